/**
 * `engine status` on the real service: the simulated engine serves the
 * scheduling resources as the API model defines them, each state is played
 * by changing its set-up, and GetEngineStatus (a real grpc-js client),
 * /metrics and the log say what the engine's view is. A set-up the account
 * may not read is "unknown", and the service goes on scoring.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadEngineStatusProto } from '../../src/engine-view/service';
import type { GetEngineStatusResponse__Output } from '../../src/generated/ksmscorer/v1/GetEngineStatusResponse';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import type { Logger } from '../../src/log';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { defaultScheduling, KSM_POLICY_ID, KSM_UNIT_ID, NONE_POLICY_ID } from '../../src/simulator/scheduling';
import { type Scorer, startScorer, startSimulator, unary, waitUntil } from '../helpers';
import { scrape, valueOf } from '../metrics/scrape';
import { call, engineCostCall } from '../scheduler-proxy/wire';

const PROXY = { KSM_SCORER_OVIRT_PROXY_LISTEN: '127.0.0.1:0' };

function statusClient(s: Scorer): grpc.Client {
  const proto = loadEngineStatusProto();
  return new proto.ksmscorer.v1.EngineStatusService(s.address, grpc.credentials.createInsecure());
}

async function status(s: Scorer): Promise<GetEngineStatusResponse__Output> {
  const client = statusClient(s);
  try {
    return await unary<object, GetEngineStatusResponse__Output>(client, 'GetEngineStatus', {});
  } finally {
    client.close();
  }
}

/** A logger keeping its lines, to read the engine-view line. */
function capturingLogger(): Logger & { lines: { level: string; msg: string; fields: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (msg: string, fields: Record<string, unknown> = {}) =>
      void lines.push({ level, msg, fields });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('engine status against the simulated engine', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer;
  const logger = capturingLogger();
  const clusterIds: string[] = [];

  beforeAll(async () => {
    // 45 hosts: three clusters, Default on the policy weighing the unit, the others on "none".
    sim = await startSimulator({ hosts: 45, vms: 300 });
    clusterIds.push(...sim.inventory.clusters.keys());
    scorer = await startScorer(sim, PROXY, { logger });
    await waitUntil(() => logger.lines.some((l) => l.msg === "the engine's view of ksm-scorer"));
  });
  afterAll(async () => {
    await scorer?.close();
    await sim?.stop();
  });
  afterEach(async () => {
    // Back to the configured example.
    const fresh = defaultScheduling();
    sim.inventory.scheduling.units = fresh.units;
    for (const [id, p] of fresh.policies) sim.inventory.scheduling.policies.set(id, p);
    clusterIds.forEach((id, i) => (sim.inventory.clusters.get(id)!.schedulingPolicyId = i === 0 ? KSM_POLICY_ID : NONE_POLICY_ID));
    sim.faults = {};
    await scorer.service.engineView.refresh();
  });

  it('configured, not yet called: names the policy, its factor and the clusters that use it and do not; one log line at start', async () => {
    const res = await status(scorer);
    expect(res.state).toBe('ENGINE_USE_STATE_NOT_CALLED');
    expect(res.advice[0]).toBe(
      'policy ksm_same_os weighs the unit at factor 2, cluster Default uses it; clusters cluster-2, cluster-3 use policy none, which does not',
    );
    expect(res.advice[1]).toMatch(
      /^no call from the engine in the last hour \(none since ksm-scorer started\): if VMs were started or migrated on cluster Default since, check engine-config/,
    );
    expect(res.engine!.known).toBe(true);
    expect(res.engine!.unit_discovered && res.engine!.unit_enabled).toBe(true);
    expect(res.engine!.policies).toEqual([{ id: KSM_POLICY_ID, name: 'ksm_same_os', factor: 2 }]);
    expect(res.engine!.clusters.map((c) => [c.name, c.policy_name, c.weighs_unit])).toEqual([
      ['Default', 'ksm_same_os', true],
      ['cluster-2', 'none', false],
      ['cluster-3', 'none', false],
    ]);
    expect(res.calls!.listening).toBe(true);
    expect(res.calls!.last_call_time).toBeNull();
    const line = logger.lines.filter((l) => l.msg === "the engine's view of ksm-scorer");
    expect(line).toHaveLength(1);
    expect(line[0]!.fields).toMatchObject({
      state: 'not_called',
      policies: ['ksm_same_os (factor 2)'],
      clustersWeighingUnit: 1,
      clusters: 3,
    });
  });

  it('the engine calls: in use, counted by method and outcome for the last hour, with the time of the last call; gauges on /metrics', async () => {
    const port = scorer.service.ovirtProxyPort!;
    const vm = [...sim.inventory.vms.values()].find((v) => v.hostId !== undefined)!;
    const hosts = [...sim.inventory.hosts.keys()].slice(0, 3);
    const before = Date.now();
    await call(port, engineCostCall(vm.id, hosts));
    await call(port, engineCostCall(vm.id, hosts));
    await call(port, '<?xml version="1.0"?><methodCall><methodName>discover</methodName><params/></methodCall>');
    const res = await status(scorer);
    expect(res.state).toBe('ENGINE_USE_STATE_IN_USE');
    expect(res.calls!.counts).toEqual([
      { method: 'discover', outcome: 'ok', count: '1' },
      { method: 'runCostFunctions', outcome: 'ok', count: '2' },
    ]);
    expect(Number(res.calls!.last_call_time!.seconds) * 1000).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(res.advice.at(-1)).toMatch(
      /^the engine called 3 times in the last hour \(discover ok 1, runCostFunctions ok 2\), the last at 20/,
    );

    const { text } = await scrape(scorer.service.metricsPort!);
    expect(valueOf(text, 'ksm_scorer_engine_view_known')).toBe(1);
    expect(valueOf(text, 'ksm_scorer_engine_unit_discovered')).toBe(1);
    expect(valueOf(text, 'ksm_scorer_engine_policies_weighing_unit')).toBe(1);
    expect(valueOf(text, 'ksm_scorer_engine_clusters_weighing_unit')).toBe(1);
    expect(valueOf(text, 'ksm_scorer_engine_clusters_not_weighing_unit')).toBe(2);
    expect(valueOf(text, 'ksm_scorer_xmlrpc_last_call_timestamp_seconds')).toBeGreaterThanOrEqual(Math.floor(before / 1000));
  });

  it('not discovered: the engine lists no external ksm_same_os_score (an internal unit of that name does not count)', async () => {
    sim.inventory.scheduling.units = sim.inventory.scheduling.units.map((u) => (u.id === KSM_UNIT_ID ? { ...u, internal: true } : u));
    await scorer.service.engineView.refresh();
    const res = await status(scorer);
    expect(res.state).toBe('ENGINE_USE_STATE_NOT_DISCOVERED');
    expect(res.advice[0]).toMatch(
      /^the engine has not discovered the unit ksm_same_os_score: set ExternalSchedulerEnabled=true .* engine-config, then restart ovirt-engine/,
    );
    expect(valueOf((await scrape(scorer.service.metricsPort!)).text, 'ksm_scorer_engine_unit_discovered')).toBe(0);
    // A change of state is logged again, as a warning.
    expect(logger.lines.filter((l) => l.msg === "the engine's view of ksm-scorer changed").at(-1)).toMatchObject({
      level: 'warn',
      fields: { state: 'not_discovered' },
    });
  });

  it('disabled: the engine knows the unit but its last discovery did not find it', async () => {
    sim.inventory.scheduling.units.find((u) => u.id === KSM_UNIT_ID)!.enabled = false;
    await scorer.service.engineView.refresh();
    const res = await status(scorer);
    expect(res.state).toBe('ENGINE_USE_STATE_UNIT_DISABLED');
    expect(res.advice[0]).toMatch(/has it disabled: its last discovery .* ExternalSchedulerServiceURL .* restart ovirt-engine/);
  });

  it('not weighed: discovered, but no policy has it among its weights', async () => {
    const policy = sim.inventory.scheduling.policies.get(KSM_POLICY_ID)!;
    policy.weights = policy.weights.filter((w) => w.unitId !== KSM_UNIT_ID);
    await scorer.service.engineView.refresh();
    const res = await status(scorer);
    expect(res.state).toBe('ENGINE_USE_STATE_NOT_WEIGHED');
    expect(res.advice[0]).toMatch(/no scheduling policy weighs it: add it to a policy's weight modules with a factor/);
    expect(res.engine!.clusters.every((c) => !c.weighs_unit)).toBe(true);
  });

  it('no cluster: the policy weighs the unit but no cluster runs it', async () => {
    sim.inventory.clusters.get(clusterIds[0]!)!.schedulingPolicyId = NONE_POLICY_ID;
    await scorer.service.engineView.refresh();
    const res = await status(scorer);
    expect(res.state).toBe('ENGINE_USE_STATE_NO_CLUSTER');
    expect(res.advice[0]).toBe(
      'policy ksm_same_os weighs the unit at factor 2, but no cluster uses it: set it on the clusters that should place VMs by OS (Compute > Clusters > Edit > Scheduling Policy)',
    );
    expect(valueOf((await scrape(scorer.service.metricsPort!)).text, 'ksm_scorer_engine_clusters_weighing_unit')).toBe(0);
  });

  it('an account that may not read scheduling policies (403): unknown, with the reason; the inventory and scoring carry on', async () => {
    sim.faults.respond = (path: string, _req: IncomingMessage, res: ServerResponse) => {
      if (!path.startsWith('/schedulingpolicies')) return false;
      res
        .writeHead(403, { 'content-type': 'application/json' })
        .end(JSON.stringify({ reason: 'Operation Failed', detail: 'User is not authorized to perform this action.' }));
      return true;
    };
    const generation = scorer.service.inventory.snapshot()!.generation;
    await scorer.service.engineView.refresh();
    const res = await status(scorer);
    expect(res.state).toBe('ENGINE_USE_STATE_UNKNOWN');
    expect(res.engine!.known).toBe(false);
    expect(res.engine!.unknown_reason).toMatch(/^GET \/schedulingpolicies: HTTP 403, not permitted for this account/);
    expect(res.advice[0]).toMatch(/the account admin@internal may not read it; give it a role that may .* Scoring is not affected\.$/);
    expect(valueOf((await scrape(scorer.service.metricsPort!)).text, 'ksm_scorer_engine_view_known')).toBe(0);
    // Not a sync failure: the inventory refreshes and scores as before.
    // (The 403 is for the policies only: the inventory's reads go on as before.)
    await scorer.service.inventory.refresh();
    expect(scorer.service.inventory.snapshot()!.generation).toBeGreaterThan(generation);
    const vm = [...sim.inventory.vms.values()].find((v) => v.hostId !== undefined)!;
    const scored = await unary<object, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', { vm_id: vm.id, host_ids: [vm.hostId!] });
    expect(scored.scores).toHaveLength(1);
  });

  it('404, an HTML page, a list of the wrong type, a dead engine: unknown with the reason each time, never an error of the service', async () => {
    const answers: [string, (res: ServerResponse) => void, RegExp][] = [
      [
        '/schedulingpolicyunits',
        (res) => res.writeHead(404, { 'content-type': 'application/json' }).end('{"reason":"Not Found"}'),
        /^GET \/schedulingpolicyunits: HTTP 404/,
      ],
      [
        '/schedulingpolicyunits',
        (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>starting</html>'),
        /^GET \/schedulingpolicyunits: HTTP 200 .*malformed answer/,
      ],
      [
        '/schedulingpolicies',
        (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"scheduling_policy": 7}'),
        /^GET \/schedulingpolicies: HTTP 200 .*malformed/,
      ],
    ];
    for (const [target, answer, reason] of answers) {
      sim.faults.respond = (path, _req, res) => {
        if (path !== target) return false;
        answer(res);
        return true;
      };
      await scorer.service.engineView.refresh();
      const res = await status(scorer);
      expect(res.state, target).toBe('ENGINE_USE_STATE_UNKNOWN');
      expect(res.engine!.unknown_reason).toMatch(reason);
    }
    sim.faults = { status: 503 };
    await scorer.service.engineView.refresh();
    expect((await status(scorer)).engine!.unknown_reason).toMatch(/HTTP 503/);
  });
});

describe('engine status with the XML-RPC listener off', () => {
  it('configured on the engine, but nothing here listens for it: proxy_off, and how to turn it on', async () => {
    const sim = await startSimulator({ hosts: 45, vms: 100 });
    const scorer = await startScorer(sim);
    try {
      await scorer.service.engineView.refresh();
      const res = await status(scorer);
      expect(res.state).toBe('ENGINE_USE_STATE_PROXY_OFF');
      expect(res.calls!.listening).toBe(false);
      expect(res.advice.at(-1)).toMatch(/XML-RPC listener is off here \(KSM_SCORER_OVIRT_PROXY_LISTEN unset\)/);
    } finally {
      await scorer.close();
      await sim.stop();
    }
  });
});

describe('engine status reads under a slow engine, and asked for repeatedly', () => {
  it('a scheduling read that never answers ends at the request timeout as unknown, while scoring goes on; refreshes asked together share one read', async () => {
    const sim = await startSimulator({ hosts: 45, vms: 100 });
    const scorer = await startScorer(sim, { ...PROXY, OVIRT_TIMEOUT_SECONDS: '0.5', OVIRT_REQUEST_DEADLINE_SECONDS: '1' });
    try {
      await scorer.service.engineView.refresh();
      const units = () => sim.requests.filter((r) => r.path === '/api/schedulingpolicyunits').length;
      const before = units();
      await Promise.all(Array.from({ length: 20 }, () => scorer.service.engineView.refresh()));
      expect(units() - before, 'requests for 20 refreshes asked together').toBe(1);

      const held: ServerResponse[] = [];
      sim.faults.respond = (path, _req, res) => path === '/schedulingpolicyunits' && held.push(res) > 0;
      const t0 = Date.now();
      const reading = scorer.service.engineView.refresh();
      // While it hangs, the status answers from the last read, and scoring is not held up.
      expect((await status(scorer)).state).toBe('ENGINE_USE_STATE_NOT_CALLED');
      const vm = [...sim.inventory.vms.values()].find((v) => v.hostId !== undefined)!;
      expect((await unary<object, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', { vm_id: vm.id })).scores.length).toBe(45);
      await reading;
      expect(Date.now() - t0).toBeLessThan(10_000);
      const res = await status(scorer);
      expect(res.state).toBe('ENGINE_USE_STATE_UNKNOWN');
      expect(res.engine!.unknown_reason).toMatch(/^GET \/schedulingpolicyunits: .*(timeout|did not finish|unreachable)/i);
      held.forEach((r) => r.destroy());
    } finally {
      await scorer.close();
      await sim.stop();
    }
  });
});
