/**
 * Issue 19: a connection that floods control frames (WINDOW_UPDATE and PRIORITY, which nghttp2
 * answers with nothing, so its outbound-queue flood guard never trips) without making calls is
 * cut, and the calls of other clients go on being answered meanwhile. The latency ratio is
 * printed here; `make bench` (BENCH_ONLY=control-flood) reports it as a benchmark.
 */
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { type Scorer, startScorer, startSimulator, unary } from '../helpers';
import { controlFrames, flood, FRAME, frame, H2_ERROR, PREFACE, RawH2Connection } from '../raw-h2';
import { makePki } from '../tls/pki';

const OS = { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' };

/** Calls ScoreHosts one after another for `ms`, or until `until` resolves: each call's latency (ms), and how many failed. */
async function probe(scorer: Scorer, ms: number, until?: Promise<unknown>): Promise<{ latencies: number[]; failed: number }> {
  const latencies: number[] = [];
  let failed = 0;
  let over = false;
  void until?.then(() => (over = true));
  const end = performance.now() + ms;
  while (performance.now() < end && !over) {
    const t0 = performance.now();
    try {
      await unary(scorer.client, 'ScoreHosts', { os: OS }, { deadline: Date.now() + 5_000 });
      latencies.push(performance.now() - t0);
    } catch {
      failed++;
    }
  }
  return { latencies, failed };
}

const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!;

describe('control frame flood', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer;

  beforeAll(async () => {
    sim = await startSimulator({ hosts: 20, vms: 200, seed: 19 });
    scorer = await startScorer(sim);
    await probe(scorer, 300); // warm up
  });
  afterAll(async () => {
    await scorer.close();
    await sim.stop();
  });

  it('a connection sending WINDOW_UPDATE and PRIORITY frames and no calls is cut within 10 s; other calls keep succeeding', async () => {
    const quiet = await probe(scorer, 1_500);
    const attacker = await RawH2Connection.open(scorer.service.port);
    const t0 = performance.now();
    const f = flood(attacker, controlFrames(4_096));
    const closed = attacker.waitClosed(10_000);
    const during = probe(scorer, 10_000, closed);
    const cut = await closed;
    const cutMs = performance.now() - t0;
    f.stop();
    const busy = await during;
    const bytes = await f.done;
    const total = busy.latencies.length + busy.failed;
    console.info(
      `control flood: cut ${cut} after ${Math.round(cutMs)} ms (${Math.round(bytes / 2 ** 20)} MiB sent, GOAWAY ${attacker.goawayCode()}); ` +
        `probe ${busy.latencies.length}/${total} ok, p99 ${p99(quiet.latencies).toFixed(2)} ms quiet, ${p99(busy.latencies).toFixed(2)} ms during (ratio ${(p99(busy.latencies) / p99(quiet.latencies)).toFixed(2)})`,
    );
    expect(cut).toBe(true);
    expect(attacker.goawayCode()).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
    expect(busy.latencies.length / total).toBeGreaterThanOrEqual(0.95);
  });

  it('a client sending large requests (2 MiB of host ids in under a second) and a few SETTINGS, PINGs and WINDOW_UPDATEs is not cut', async () => {
    // Request bytes are not control bytes: without subtracting them, this client would be past 64 KiB/s 30 times over.
    const ids = [...sim.inventory.hosts.keys()];
    const big = Array.from({ length: 5_000 }, (_, i) => ids[i % ids.length]!);
    const calls = Array.from({ length: 10 }, () =>
      unary<object, { scores: unknown[] }>(scorer.client, 'ScoreHosts', { os: OS, host_ids: big }),
    );
    for (const res of await Promise.all(calls)) expect(res.scores).toHaveLength(ids.length); // each host once
    const c = await RawH2Connection.open(scorer.service.port);
    const increment = Buffer.alloc(4);
    increment.writeUInt32BE(65_535);
    for (let i = 0; i < 20; i++) {
      c.write(frame(FRAME.WINDOW_UPDATE, 0, 0, increment), frame(FRAME.SETTINGS, 0, 0), frame(FRAME.PING, 0, 0, Buffer.alloc(8)));
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await c.waitClosed(500)).toBe(false);
    c.destroy();
    // The grpc-js client's connection is the same one still: a cut would have made it reconnect.
    await unary(scorer.client, 'ScoreHosts', { os: OS, host_ids: big });
  });
});

describe('control frame flood over TLS', () => {
  it('is cut too: the bytes counted are those past TLS', async () => {
    const pki = makePki();
    const sim = await startSimulator({ hosts: 3, vms: 20, seed: 7 });
    const scorer = await startScorer(sim, { KSM_SCORER_TLS_CERT: pki.server.cert, KSM_SCORER_TLS_KEY: pki.server.key });
    const socket = tls.connect({
      port: scorer.service.port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca: readFileSync(pki.ca, 'utf8'),
      ALPNProtocols: ['h2'],
    });
    try {
      socket.on('error', () => {});
      socket.on('data', () => {});
      await new Promise((resolve) => socket.once('secureConnect', resolve));
      const closed = new Promise<boolean>((resolve) => {
        socket.once('close', () => resolve(true));
        setTimeout(() => resolve(false), 10_000).unref();
      });
      socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
      const batch = controlFrames(4_096);
      const pump = () => {
        while (!socket.destroyed) if (!socket.write(batch)) return void socket.once('drain', pump);
      };
      pump();
      expect(await closed).toBe(true);
    } finally {
      socket.destroy();
      await scorer.close();
      await sim.stop();
      pki.remove();
    }
  });
});
