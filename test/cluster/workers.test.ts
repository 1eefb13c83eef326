/**
 * KSM_SCORER_WORKERS=2: the real `ksm-scorer serve` (a primary and its worker processes) against a
 * simulated engine in this process, real grpc-js clients on separate connections, loopback only.
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import type { HostScorerServiceClient } from '../../src/generated/ksmscorer/v1/HostScorerService';
import type { ScoreHostsRequest } from '../../src/generated/ksmscorer/v1/ScoreHostsRequest';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import { weight } from '../../src/scheduler-proxy/handlers';
import { loadScorerProto } from '../../src/contract/proto';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { engineEnv, expectGrpcError, startSimulator, unary, waitUntil } from '../helpers';
import { killAll, type Proc, spawnProc, waitForLog } from '../processes';
import { call, engineCostCall, plain } from '../scheduler-proxy/wire';
import { makePki } from '../tls/pki';
import { valueOf } from '../metrics/scrape';

const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');
const UNKNOWN_HOST = '00000000-0000-4000-8000-00000000beef';
/** Processes start slowly on a busy 2-core machine: generous bounds, never a timing assert. */
const STARTUP_MS = 30_000;

type Log = Record<string, unknown> & { msg: string };
const logs = (p: Proc): Log[] =>
  p.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Log);
const logged = (p: Proc, msg: string) => logs(p).filter((l) => l.msg === msg);

function serve(sim: SimulatedEngine, workers: number, env: Record<string, string> = {}): Proc {
  return spawnProc(process.execPath, [CLI, 'serve'], {
    ...engineEnv(sim),
    KSM_SCORER_WORKERS: String(workers),
    KSM_SCORER_EVENTS_SECONDS: '0.5',
    ...env,
  });
}

/** The primary's one `ksm-scorer listening` line, then every worker listening with the first generation. */
async function ready(p: Proc, workers = 2): Promise<string> {
  const port = (await waitForLog(p, /"address":"127\.0\.0\.1:(\d+)"[^\n]*"msg":"ksm-scorer listening"/, STARTUP_MS))[1]!;
  await waitUntil(() => logged(p, 'worker listening').length >= workers && logged(p, 'inventory refreshed').length >= 1, STARTUP_MS);
  return port;
}

const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('worker processes (KSM_SCORER_WORKERS=2)', () => {
  let sims: SimulatedEngine[] = [];
  const clients: grpc.Client[] = [];
  /** A client on a connection of its own (no shared subchannel), so the primary hands it to the next worker. */
  const connect = (port: string): HostScorerServiceClient => {
    const client = new (loadScorerProto().ksmscorer.v1.HostScorerService)(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
    });
    clients.push(client);
    return client;
  };
  const score = (c: HostScorerServiceClient, req: ScoreHostsRequest) =>
    unary<ScoreHostsRequest, ScoreHostsResponse__Output>(c, 'ScoreHosts', req, { deadline: Date.now() + 15_000 });
  const simulator = async (options = {}) => {
    const sim = await startSimulator({ hosts: 6, vms: 90, seed: 5, ...options });
    sims.push(sim);
    return sim;
  };
  const byOs = { os: { type: 'rhel_8x64', version: '' } };

  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `make test` (it builds first)');
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await killAll();
    for (const sim of sims) await sim.stop();
    sims = [];
  });

  it('answers from every worker, and after engine events every worker answers the same new generation with the same data', async () => {
    const sim = await simulator();
    const p = serve(sim, 2);
    const port = await ready(p);
    const conns = Array.from({ length: 6 }, () => connect(port));
    const first = await Promise.all(conns.map((c) => score(c, byOs)));
    expect(new Set(first.map((r) => r.inventory!.generation)).size).toBe(1);

    const vm = [...sim.inventory.vms.values()].find((v) => v.hostId !== undefined)!;
    const host = vm.hostId!;
    const before = first[0]!.scores.find((s) => s.host_id === host)!.vm_count;
    sim.inventory.stopVm(vm.id);
    const g0 = Number(first[0]!.inventory!.generation);
    let answers: ScoreHostsResponse__Output[] = [];
    for (const end = Date.now() + STARTUP_MS; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
      answers = await Promise.all(conns.map((c) => score(c, byOs)));
      if (answers.every((r) => Number(r.inventory!.generation) > g0)) break;
    }
    // Polled on every connection at once: they may straddle a poll, so compare answers of one generation.
    const generations = new Set(answers.map((r) => r.inventory!.generation));
    expect(Math.min(...[...generations].map(Number))).toBeGreaterThan(g0);
    for (const g of generations) {
      const counts = new Set(
        answers.filter((r) => r.inventory!.generation === g).map((r) => r.scores.find((s) => s.host_id === host)!.vm_count),
      );
      expect([...counts]).toEqual([before - 1]);
    }

    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    const stopped = logged(p, 'worker stopped');
    expect(stopped).toHaveLength(2);
    // Both workers answered calls: the connections were spread over them.
    for (const w of stopped) expect(w.calls).toBeGreaterThan(0);
  });

  it('the /metrics the primary serves merges every worker: calls counted once each, shared gauges not summed', async () => {
    const sim = await simulator();
    const p = serve(sim, 2);
    const port = await ready(p);
    const metricsUrl = String(logged(p, 'ksm-scorer listening')[0]!.metrics);
    const conns = Array.from({ length: 6 }, () => connect(port));
    const answers = await Promise.all([...conns, ...conns].map((c) => score(c, byOs)));
    const res = await fetch(metricsUrl);
    const text = await res.text();
    // 6 connections x 2 calls, spread over two workers; each worker counts its own, the scrape adds them up.
    expect(valueOf(text, 'grpc_server_handled_total', { grpc_method: 'ScoreHosts', grpc_code: 'OK' })).toBe(12);
    // Every worker holds the same generation: max, not 2 x it.
    const generation = Math.max(...answers.map((r) => Number(r.inventory!.generation)));
    expect(valueOf(text, 'ksm_scorer_inventory_generation')).toBe(generation);
    expect(valueOf(text, 'ksm_scorer_inventory_hosts')).toBe(6);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });

  it('a killed worker is replaced: the new one gets the current generation before it listens, then serves', async () => {
    const sim = await simulator();
    const p = serve(sim, 2);
    const port = await ready(p);
    const generation = (await score(connect(port), byOs)).inventory!.generation;
    const [victim] = logged(p, 'worker started');
    process.kill(victim!.workerPid as number, 'SIGKILL');

    await waitUntil(() => logged(p, 'worker listening').length >= 3, STARTUP_MS);
    expect(logged(p, 'worker exited: starting another')[0]).toMatchObject({ worker: victim!.worker, signal: 'SIGKILL' });
    const replacement = logged(p, 'worker started')[2]!;
    const listening = logged(p, 'worker listening').find((l) => l.worker === replacement.worker)!;
    expect(listening.generation).toBeGreaterThanOrEqual(Number(generation));

    const healthPkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as any;
    for (let i = 0; i < 6; i++) {
      const health = new healthPkg.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
      });
      clients.push(health);
      expect(await unary(health, 'Check', { service: '' })).toEqual({ status: 'SERVING' });
      expect((await score(connect(port), byOs)).scores).toHaveLength(6);
    }

    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    const served = logged(p, 'worker stopped').find((l) => l.worker === replacement.worker);
    expect(served?.calls).toBeGreaterThan(0);
    expect(isRunning(victim!.workerPid as number)).toBe(false);
  });

  it('health is NOT_SERVING on every worker until the first generation arrives', async () => {
    const sim = await simulator();
    sim.faults.hang = true;
    const p = serve(sim, 2);
    const port = (await waitForLog(p, /"address":"127\.0\.0\.1:(\d+)"[^\n]*"msg":"ksm-scorer listening"/, STARTUP_MS))[1]!;
    await waitUntil(() => logged(p, 'worker listening').length >= 2, STARTUP_MS);
    const healthPkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as any;
    const checks = () =>
      Promise.all(
        Array.from({ length: 4 }, () => {
          const health = new healthPkg.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
            'grpc.use_local_subchannel_pool': 1,
          });
          clients.push(health);
          return unary<unknown, { status: string }>(health, 'Check', { service: 'ksmscorer.v1.HostScorerService' }).then((r) => r.status);
        }),
      );
    expect(await checks()).toEqual(['NOT_SERVING', 'NOT_SERVING', 'NOT_SERVING', 'NOT_SERVING']);
    sim.faults.hang = false;
    await waitUntil(() => logged(p, 'inventory state changed').filter((l) => l.worker !== undefined).length >= 2, STARTUP_MS);
    expect(await checks()).toEqual(['SERVING', 'SERVING', 'SERVING', 'SERVING']);
  });

  it('SIGTERM drains every worker: calls in flight (waiting on the engine through the primary) finish, then the whole tree exits', async () => {
    const sim = await simulator();
    const p = serve(sim, 2, { KSM_SCORER_SHUTDOWN_GRACE_SECONDS: '20' });
    const port = await ready(p);
    const pids = logged(p, 'worker started').map((l) => l.workerPid as number);
    sim.latencyMs = 1_000;
    // An unknown host makes each call read the engine on demand, through the primary: one host each, so every call is seen in flight.
    const unknown = Array.from({ length: 4 }, (_, i) => UNKNOWN_HOST.replace(/beef$/, `bee${i}`));
    const calls = unknown.map((host) => score(connect(port), { ...byOs, host_ids: [host] }));
    await waitUntil(() => unknown.every((host) => sim.arrived.includes(`/api/hosts/${host}`)), STARTUP_MS);
    p.child.kill('SIGTERM');
    for (const [i, res] of (await Promise.all(calls)).entries()) expect(res.scores[0]).toMatchObject({ host_id: unknown[i], found: false });
    expect(await p.exited).toBe(0);
    expect(logged(p, 'worker stopped')).toHaveLength(2);
    expect(logged(p, 'stopped')).toHaveLength(1);
    for (const pid of pids) expect(isRunning(pid)).toBe(false);
  });

  it('when the primary dies, the workers exit instead of staying behind', async () => {
    const sim = await simulator();
    const p = serve(sim, 2);
    await ready(p);
    const pids = logged(p, 'worker started').map((l) => l.workerPid as number);
    p.child.kill('SIGKILL');
    await p.exited;
    await expect.poll(() => pids.filter((pid) => isRunning(pid)), { timeout: STARTUP_MS }).toEqual([]);
  });

  it('the workers serve the oVirt scheduler proxy on its shared port too, with the weights of gRPC ScoreHosts', async () => {
    const sim = await simulator();
    const p = serve(sim, 2, { KSM_SCORER_OVIRT_PROXY_LISTEN: '127.0.0.1:0' });
    const port = await ready(p);
    expect(logged(p, 'oVirt scheduler proxy listening')).toHaveLength(1);
    const proxyPort = Number(/:(\d+)$/.exec(String(logged(p, 'oVirt scheduler proxy listening')[0]!.address))![1]);
    const vm = [...sim.inventory.vms.values()].find((v) => v.hostId !== undefined)!;
    const hostIds = [...sim.inventory.hosts.keys()];
    const expected = (await score(connect(port), { vm_id: vm.id, host_ids: hostIds })).scores.map((s) => [
      s.host_id,
      weight(s.score),
      'ksm_same_os_score',
    ]);
    // Several at once, so the proxy's connections go to both workers.
    const answers = await Promise.all(Array.from({ length: 8 }, () => call(proxyPort, engineCostCall(vm.id, hostIds))));
    for (const answer of answers) expect(plain(answer)).toMatchObject({ result_code: 0, result: expected });
  });

  it('mutual TLS on the shared port: every worker ends TLS and checks the client certificate', async () => {
    const pki = makePki();
    try {
      const sim = await simulator();
      const p = serve(sim, 2, {
        KSM_SCORER_TLS_CERT: pki.server.cert,
        KSM_SCORER_TLS_KEY: pki.server.key,
        KSM_SCORER_TLS_CLIENT_CA: pki.ca,
      });
      const port = await ready(p);
      const tlsClient = (withCert: boolean) => {
        const creds = grpc.credentials.createSsl(
          readFileSync(pki.ca),
          withCert ? readFileSync(pki.client.key) : null,
          withCert ? readFileSync(pki.client.cert) : null,
        );
        const client = new (loadScorerProto().ksmscorer.v1.HostScorerService)(`127.0.0.1:${port}`, creds, {
          'grpc.use_local_subchannel_pool': 1,
        });
        clients.push(client);
        return client;
      };
      for (const res of await Promise.all(Array.from({ length: 4 }, () => score(tlsClient(true), byOs))))
        expect(res.scores).toHaveLength(6);
      await expectGrpcError(score(tlsClient(false), byOs), grpc.status.UNAVAILABLE);
      p.child.kill('SIGTERM');
      expect(await p.exited).toBe(0);
      for (const w of logged(p, 'worker stopped')) expect(w.calls).toBeGreaterThan(0);
    } finally {
      pki.remove();
    }
  });

  it('the engine does not pay for the workers: one login, one sync loop, on-demand reads through the primary', async () => {
    const one = await simulator();
    const two = await simulator();
    const procs = [serve(one, 1), serve(two, 2)];
    const ports = await Promise.all([ready(procs[0]!, 0), ready(procs[1]!)]);
    // On-demand reads from every worker of each, then a few event polls' time for both.
    await Promise.all(
      ports.flatMap((port) =>
        Array.from({ length: 4 }, (_, i) => score(connect(port), { ...byOs, host_ids: [UNKNOWN_HOST.replace(/beef$/, `bee${i}`)] })),
      ),
    );
    await new Promise((r) => setTimeout(r, 3_000));
    await Promise.all(procs.map(async (p) => (p.child.kill('SIGTERM'), await p.exited)));

    const count = (sim: SimulatedEngine) => {
      const kind = (test: (path: string) => boolean) => sim.requests.filter((r) => test(r.path)).length;
      return {
        logins: kind((path) => path.endsWith('/oauth/token')),
        hostLists: kind((path) => path === '/api/hosts'),
        onDemand: kind((path) => path.startsWith('/api/hosts/')),
        polls: kind((path) => path === '/api/events'),
      };
    };
    const [c1, c2] = [count(one), count(two)];
    expect(c2).toMatchObject({ logins: 1, hostLists: 1, onDemand: 4 });
    expect(c1).toMatchObject({ logins: 1, hostLists: 1, onDemand: 4 });
    // Polls are timed, so not exactly equal; two sync loops would double them.
    expect(c2.polls).toBeLessThan(c1.polls * 1.5 + 4);
  });

  /** What a client on a connection of its own (so the next worker) sees. */
  const view = async (port: string) => {
    const client = connect(port);
    const options = { deadline: Date.now() + 10_000 };
    const vms = await unary<
      object,
      {
        vms: { id: string; host_id: string; os: unknown }[];
        total_count: number;
        inventory: { generation: string; stale: boolean; vm_count: number };
      }
    >(client, 'ListVms', { max_results: 1000 }, options);
    const oses = await unary<object, { operating_systems: unknown[] }>(client, 'ListOperatingSystems', {}, options);
    const hosts = await unary<object, { hosts: unknown[] }>(client, 'ListHosts', {}, options);
    return {
      generation: vms.inventory.generation,
      stale: vms.inventory.stale,
      vmCount: vms.inventory.vm_count,
      vms: vms.vms,
      total: vms.total_count,
      oses: oses.operating_systems,
      hosts: hosts.hosts,
    };
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('after a full generation, event changes and a worker restart, every worker answers the same lists; a held refresh leaves them serving the last one, flagged stale', async () => {
    const sim = await startSimulator({ hosts: 6, vms: 90, seed: 5 });
    sims.push(sim);
    const p = spawnProc(process.execPath, [CLI, 'serve'], {
      ...engineEnv(sim),
      KSM_SCORER_WORKERS: '2',
      KSM_SCORER_EVENTS_SECONDS: '0.2',
      KSM_SCORER_STALE_SECONDS: '1.5',
      KSM_SCORER_BACKOFF_MAX_SECONDS: '1',
    });
    await waitUntil(() => logged(p, 'worker listening').length >= 2 && logged(p, 'inventory refreshed').length >= 1, 30_000);
    const port = String((logged(p, 'ksm-scorer listening')[0]!.address as string).split(':')[1]);
    const before = await view(port);

    // Changes by events: moves, stops, starts, an OS change, a removal.
    const hostIds = [...sim.inventory.hosts.keys()];
    const vms = [...sim.inventory.vms.values()];
    const running = vms.filter((vm) => vm.hostId !== undefined);
    const stopped = vms.filter((vm) => vm.hostId === undefined);
    sim.inventory.migrateVm(
      running[0]!.id,
      hostIds.find((h) => h !== running[0]!.hostId)!,
    );
    sim.inventory.stopVm(running[1]!.id);
    sim.inventory.startVm(stopped[0]!.id, hostIds[0]!);
    sim.inventory.updateVmOs(running[2]!.id, 'windows_2019x64');
    sim.inventory.removeVm(running[3]!.id);
    await waitUntil(
      () => logged(p, 'inventory refreshed').length >= 1 && sim.requests.filter((r) => r.path.startsWith('/api/vms/')).length >= 5,
      10_000,
    );
    await sleep(600);

    // A worker restart: the replacement takes the whole current generation (base and changes layers).
    const [victim] = logged(p, 'worker started');
    process.kill(victim!.workerPid as number, 'SIGKILL');
    await waitUntil(() => logged(p, 'worker listening').length >= 3, 30_000);
    const views = [];
    for (let i = 0; i < 6; i++) views.push(await view(port));
    const changed = views[0]!;
    expect(Number(changed.generation)).toBeGreaterThan(Number(before.generation));
    expect(changed.vms.find((vm) => vm.id === running[3]!.id)).toBeUndefined();
    for (const v of views) expect(v).toEqual(changed);

    // A broken answer (60% of the VMs gone) is held: every worker serves the last generation, stale once it ages.
    const generation = changed.generation;
    for (const vm of [...sim.inventory.vms.values()].slice(0, 55)) sim.inventory.removeVm(vm.id);
    sim.faults.respond = (path, req: IncomingMessage, res: ServerResponse) => {
      // Polls see nothing new; full refreshes read the broken list.
      if (path === '/events') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        return true;
      }
      return false;
    };
    const held = () => logged(p, 'full refresh not published: serving the last good inventory, which ages').length;
    await sleep(1_800);
    // Past the stale age with no published refresh since: the poll finds the event log gone backwards, and the full refresh is held.
    expect(held()).toBeGreaterThanOrEqual(1);
    const later = [];
    for (let i = 0; i < 4; i++) later.push(await view(port));
    for (const v of later) {
      expect(v.generation).toBe(generation);
      expect(v.stale).toBe(true);
    }
  }, 60_000);
});
