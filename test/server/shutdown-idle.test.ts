/**
 * Issue 19: a stop with idle client connections (a grpc-js client, a Python grpcio client) ends
 * within 1 s: after the GOAWAY, connections without a call are closed at once, not left to the
 * client or the grace period. The drain log counts only calls really in flight.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../../src/log';
import { loadScorerProto } from '../../src/contract/proto';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { type Scorer, startScorer, startSimulator, unary } from '../helpers';
import { killAll, serveOnSimulator, spawnProc } from '../processes';

const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');

/** A Python grpcio client that has made one call and holds its channel idle; resolves once its call is answered. */
async function idlePythonClient(address: string): Promise<ChildProcess> {
  const child = spawn('/usr/bin/python3', [join(__dirname, 'idle_client.py'), address], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the Python client made no call within 10 s')), 10_000);
    child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && (clearTimeout(timer), resolve()));
    child.once('exit', (code) => reject(new Error(`the Python client exited with ${code}`)));
  });
  return child;
}

describe('stop with idle client connections', () => {
  let sim: SimulatedEngine | undefined;
  let scorer: Scorer | undefined;
  let python: ChildProcess | undefined;
  afterEach(async () => {
    python?.stdin?.end();
    python?.kill();
    python = undefined;
    await scorer?.close();
    await sim?.stop();
  });

  for (const clients of [['grpc-js'], ['python'], ['grpc-js', 'python']] as const) {
    it(`an idle ${clients.join(' and an idle ')} connection: the stop ends within 1 s, with no call said to be in flight`, async () => {
      sim = await startSimulator({ hosts: 3, vms: 20, seed: 5 });
      const lines: string[] = [];
      const logger = createLogger('info', { write: (line: string) => lines.push(line) });
      scorer = await startScorer(sim, { KSM_SCORER_SHUTDOWN_GRACE_SECONDS: '10' }, { logger });
      if ((clients as readonly string[]).includes('grpc-js')) await unary(scorer.client, 'ListOperatingSystems', {});
      if ((clients as readonly string[]).includes('python')) python = await idlePythonClient(scorer.address);
      await new Promise((r) => setTimeout(r, 200)); // the connections are idle
      const t0 = performance.now();
      await scorer.service.stop();
      const ms = performance.now() - t0;
      console.info(`stop with an idle ${clients.join(' and an idle ')} connection: ${Math.round(ms)} ms`);
      expect(ms).toBeLessThan(1_000);
      expect(lines.join('')).not.toMatch(/cancelling the calls still in flight/);
    });
  }

  it('SIGTERM to `ksm-scorer serve` with an idle grpc-js and an idle Python client connection: the process exits 0 within 1 s', async () => {
    try {
      const { server, port } = await serveOnSimulator(
        (args, env) =>
          spawnProc(process.execPath, ['--no-memory-reducer', '--single-threaded-gc', CLI, ...args], {
            ...env,
            KSM_SCORER_SHUTDOWN_GRACE_SECONDS: '10',
          }),
        4,
        20,
      );
      const address = `127.0.0.1:${port}`;
      const client = new (loadScorerProto().ksmscorer.v1.HostScorerService)(address, grpc.credentials.createInsecure());
      try {
        await unary(client, 'ListOperatingSystems', {});
        python = await idlePythonClient(address);
        await new Promise((r) => setTimeout(r, 200));
        const t0 = performance.now();
        server.child.kill('SIGTERM');
        const code = await server.exited;
        const ms = performance.now() - t0;
        console.info(`SIGTERM with idle grpc-js and Python connections: exit ${code} after ${Math.round(ms)} ms`);
        expect(code).toBe(0);
        expect(ms).toBeLessThan(1_000);
        expect(server.stderr).not.toMatch(/grace period over/);
      } finally {
        client.close();
      }
    } finally {
      await killAll();
    }
  });

  it('the grace period over, the drain log counts the calls really in flight (2), not the idle connection beside them', async () => {
    sim = await startSimulator({ hosts: 3, vms: 20, seed: 5 });
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => lines.push(line) });
    scorer = await startScorer(sim, { KSM_SCORER_SHUTDOWN_GRACE_SECONDS: '0.3' }, { logger });
    python = await idlePythonClient(scorer.address);
    await unary(scorer.client, 'ListOperatingSystems', {});
    sim.latencyMs = 3_000;
    // Hosts the inventory lacks: each call waits on the (slow) engine.
    const slow = ['00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-0000000000a2'].map((id) =>
      unary(scorer!.client, 'ScoreHosts', { os: { type: 'other', version: '' }, host_ids: [id] }).catch((e: unknown) => e),
    );
    await new Promise((r) => setTimeout(r, 200));
    await scorer.service.stop();
    await Promise.all(slow);
    const drain = lines.map((l) => JSON.parse(l) as { msg: string; calls?: number }).find((l) => l.msg.startsWith('grace period over'));
    expect(drain).toMatchObject({ msg: 'grace period over, cancelling the calls still in flight', calls: 2 });
  });
});
