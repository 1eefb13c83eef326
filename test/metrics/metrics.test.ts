/**
 * /metrics of the real service, scraped over HTTP after real calls from a
 * grpc-js client against the simulated engine: names, labels and values of
 * the gRPC, engine, sync, inventory and cache metrics, both formats, metrics
 * off, and hostile scrapers.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScoreHostsRequest } from '../../src/generated/ksmscorer/v1/ScoreHostsRequest';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import { silentLogger } from '../../src/log';
import { MetricsListener } from '../../src/metrics/http';
import { Metrics } from '../../src/metrics/metrics';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { expectGrpcError, type Scorer, startScorer, startSimulator, unary } from '../helpers';
import { apacheCall, call, engineCostCall, expectFault } from '../scheduler-proxy/wire';
import { parseSamples, scrape, valueOf } from './scrape';

const SERVICE = 'ksmscorer.v1.HostScorerService';
const UNKNOWN_HOST = '00000000-0000-4000-8000-0000000000a1';
const UNKNOWN_VM = '00000000-0000-4000-8000-0000000000b2';

describe('/metrics of a running service', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer;
  let port: number;
  const score = (req: ScoreHostsRequest, opts: grpc.CallOptions = {}) =>
    unary<ScoreHostsRequest, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', req, opts);
  const text = async () => (await scrape(port)).text;
  const scoreHosts = (code: string) => ({ grpc_type: 'unary', grpc_service: SERVICE, grpc_method: 'ScoreHosts', grpc_code: code });

  beforeAll(async () => {
    sim = await startSimulator({ hosts: 6, vms: 80, seed: 11 });
    // Events off and a long refresh: the only syncs are the ones the tests ask for.
    scorer = await startScorer(sim, {
      KSM_SCORER_EVENTS_SECONDS: '0',
      KSM_SCORER_REFRESH_SECONDS: '3600',
      KSM_SCORER_STALE_SECONDS: '7200',
      KSM_SCORER_MAX_STALENESS_SECONDS: '7300',
    });
    port = scorer.service.metricsPort!;
  });
  afterAll(async () => {
    await scorer.close();
    await sim.stop();
  });

  it('counts gRPC calls by method and code name, with a latency histogram, like go-grpc-prometheus', async () => {
    const hostIds = [...sim.inventory.hosts.keys()];
    for (let i = 0; i < 3; i++) await score({ os: { type: 'rhel_8x64' }, host_ids: hostIds });
    await expectGrpcError(score({ os: { type: '' } }), grpc.status.INVALID_ARGUMENT);
    await expectGrpcError(score({ vm_id: UNKNOWN_VM }), grpc.status.NOT_FOUND);
    const t = await text();
    const method = { grpc_type: 'unary', grpc_service: SERVICE, grpc_method: 'ScoreHosts' };
    expect(valueOf(t, 'grpc_server_started_total', method)).toBe(5);
    expect(valueOf(t, 'grpc_server_handled_total', scoreHosts('OK'))).toBe(3);
    expect(valueOf(t, 'grpc_server_handled_total', scoreHosts('INVALID_ARGUMENT'))).toBe(1);
    expect(valueOf(t, 'grpc_server_handled_total', scoreHosts('NOT_FOUND'))).toBe(1);
    expect(valueOf(t, 'grpc_server_handling_seconds_count', method)).toBe(5);
    expect(valueOf(t, 'grpc_server_handling_seconds_bucket', { ...method, le: '0.0001' })).toBeGreaterThanOrEqual(0);
    expect(valueOf(t, 'grpc_server_handling_seconds_bucket', { ...method, le: '10' })).toBe(5);
    expect(valueOf(t, 'grpc_server_handling_seconds_bucket', { ...method, le: '+Inf' })).toBe(5);
    expect(t).toMatch(/^# TYPE grpc_server_handled_total counter$/m);
    expect(t).toMatch(/^# TYPE grpc_server_handling_seconds histogram$/m);
  });

  it('counts health checks and reflection streams too', async () => {
    const healthPkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as any;
    const healthClient = new healthPkg.grpc.health.v1.Health(scorer.address, grpc.credentials.createInsecure());
    await unary(healthClient, 'Check', { service: '' });
    await expectGrpcError(unary(healthClient, 'Check', { service: 'nope' }), grpc.status.NOT_FOUND);
    // A watch the client gives up on: CANCELLED, as grpc-go reports it.
    const watch = healthClient.Watch({ service: '' });
    await new Promise((resolve) => watch.once('data', resolve));
    watch.on('error', () => {});
    watch.cancel();
    healthClient.close();

    const reflectionProto = join(require.resolve('@grpc/reflection'), '..', '..', 'proto', 'grpc', 'reflection', 'v1', 'reflection.proto');
    const reflPkg = grpc.loadPackageDefinition(protoLoader.loadSync(reflectionProto, { keepCase: true })) as any;
    const refl = new reflPkg.grpc.reflection.v1.ServerReflection(scorer.address, grpc.credentials.createInsecure());
    const stream = refl.ServerReflectionInfo();
    const ended = new Promise((resolve, reject) => {
      stream.on('data', () => {});
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    stream.write({ list_services: '' });
    stream.end();
    await ended;
    refl.close();

    const health = (method: string, type: string, code: string) => ({
      grpc_type: type,
      grpc_service: 'grpc.health.v1.Health',
      grpc_method: method,
      grpc_code: code,
    });
    let t = '';
    await waitUntilAsync(async () => {
      t = await text();
      return valueOf(t, 'grpc_server_handled_total', health('Watch', 'server_stream', 'CANCELLED')) === 1;
    });
    expect(valueOf(t, 'grpc_server_handled_total', health('Check', 'unary', 'OK'))).toBe(1);
    expect(valueOf(t, 'grpc_server_handled_total', health('Check', 'unary', 'NOT_FOUND'))).toBe(1);
    expect(valueOf(t, 'grpc_server_started_total', { grpc_method: 'Watch', grpc_type: 'server_stream' })).toBe(1);
    const reflection = {
      grpc_type: 'bidi_stream',
      grpc_service: 'grpc.reflection.v1.ServerReflection',
      grpc_method: 'ServerReflectionInfo',
    };
    expect(valueOf(t, 'grpc_server_started_total', reflection)).toBe(1);
    expect(valueOf(t, 'grpc_server_handled_total', { ...reflection, grpc_code: 'OK' })).toBe(1);
  });

  it('a call past its deadline counts as DEADLINE_EXCEEDED', async () => {
    // A deadline long enough for the call to reach the server on a busy machine, an engine slower still.
    sim.latencyMs = 3_000;
    try {
      await expectGrpcError(
        score({ os: { type: 'x' }, host_ids: ['00000000-0000-4000-8000-0000000000d9'] }, { deadline: Date.now() + 1_000 }),
        grpc.status.DEADLINE_EXCEEDED,
      );
    } finally {
      sim.latencyMs = 0;
    }
    let t = '';
    // The read goes on after the call gave up (for other callers); wait for it so the next tests count from still.
    await waitUntilAsync(
      async () => (valueOf((t = await text()), 'ksm_scorer_on_demand_fetches_total', { kind: 'host', outcome: 'not_found' }) ?? 0) >= 1,
    );
    expect(
      valueOf(t, 'grpc_server_handled_total', scoreHosts('DEADLINE_EXCEEDED')),
      t
        .split('\n')
        .filter((l) => l.startsWith('grpc_server_handled'))
        .join('\n'),
    ).toBe(1);
  });

  it('a refresh: syncs, engine requests by endpoint template, inventory gauges and state', async () => {
    const before = await text();
    const full = { kind: 'full', outcome: 'success' };
    await scorer.service.inventory.refresh();
    const t = await text();
    expect(valueOf(t, 'ksm_scorer_syncs_total', full)).toBe((valueOf(before, 'ksm_scorer_syncs_total', full) ?? 0) + 1);
    expect(valueOf(t, 'ksm_scorer_sync_duration_seconds_count', { kind: 'full' })).toBe(valueOf(t, 'ksm_scorer_syncs_total', full));
    for (const endpoint of ['GET /hosts', 'GET /vms']) {
      const labels = { endpoint, status_class: '2xx' };
      expect(valueOf(t, 'ksm_scorer_engine_requests_total', labels), endpoint).toBe(
        (valueOf(before, 'ksm_scorer_engine_requests_total', labels) ?? 0) + 1,
      );
    }
    expect(valueOf(t, 'ksm_scorer_engine_requests_total', { endpoint: 'POST /sso/oauth/token', status_class: '2xx' })).toBe(1);
    const snapshot = scorer.service.inventory.snapshot()!;
    expect(valueOf(t, 'ksm_scorer_inventory_hosts')).toBe(6);
    expect(valueOf(t, 'ksm_scorer_inventory_vms')).toBe(80);
    expect(valueOf(t, 'ksm_scorer_inventory_generation')).toBe(snapshot.generation);
    expect(valueOf(t, 'ksm_scorer_inventory_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(valueOf(t, 'ksm_scorer_inventory_age_seconds')).toBeLessThan(60);
    expect(['loading', 'fresh', 'stale', 'expired'].map((state) => valueOf(t, 'ksm_scorer_inventory_state', { state }))).toEqual([
      0, 1, 0, 0,
    ]);
    expect(valueOf(t, 'ksm_scorer_sync_failure_streak')).toBe(0);
  });

  it('a failed sync: counted as a failure, the engine answer as 5xx, the streak as 1', async () => {
    sim.faults.status = 503;
    try {
      await expect(scorer.service.inventory.refresh()).rejects.toMatchObject({ code: 'engine_unreachable' });
    } finally {
      sim.faults.status = undefined;
    }
    let t = await text();
    expect(valueOf(t, 'ksm_scorer_syncs_total', { kind: 'full', outcome: 'failure' })).toBe(1);
    expect(valueOf(t, 'ksm_scorer_engine_requests_total', { endpoint: 'GET /hosts', status_class: '5xx' })).toBe(1);
    expect(valueOf(t, 'ksm_scorer_sync_failure_streak')).toBe(1);
    await scorer.service.inventory.refresh();
    t = await text();
    expect(valueOf(t, 'ksm_scorer_sync_failure_streak')).toBe(0);
  });

  it('cache misses, on-demand fetches by outcome, then hits', async () => {
    const [known] = sim.inventory.hosts.keys();
    const host = sim.inventory.addHost(); // newer than the snapshot: read on demand
    const before = await text();
    const delta = (t: string, name: string, labels: Record<string, string> = {}) =>
      (valueOf(t, name, labels) ?? 0) - (valueOf(before, name, labels) ?? 0);
    await score({ os: { type: 'rhel_8x64' }, host_ids: [known!, host.id, UNKNOWN_HOST, host.id] });
    let t = await text();
    expect(delta(t, 'ksm_scorer_cache_misses_total', { kind: 'host' })).toBe(2);
    expect(delta(t, 'ksm_scorer_on_demand_fetches_total', { kind: 'host', outcome: 'found' })).toBe(1);
    expect(delta(t, 'ksm_scorer_on_demand_fetches_total', { kind: 'host', outcome: 'not_found' })).toBe(1);
    expect(delta(t, 'ksm_scorer_engine_requests_total', { endpoint: 'GET /hosts/{id}', status_class: '2xx' })).toBe(1);
    expect(delta(t, 'ksm_scorer_engine_requests_total', { endpoint: 'GET /hosts/{id}', status_class: '4xx' })).toBe(1);
    expect(delta(t, 'ksm_scorer_cache_entries')).toBe(2);
    expect(delta(t, 'ksm_scorer_cache_hits_total', { kind: 'host' })).toBe(0);

    await score({ os: { type: 'rhel_8x64' }, host_ids: [host.id, UNKNOWN_HOST] });
    await expectGrpcError(score({ vm_id: UNKNOWN_VM }), grpc.status.NOT_FOUND); // remembered since the first test
    t = await text();
    expect(delta(t, 'ksm_scorer_cache_hits_total', { kind: 'host' })).toBe(2);
    expect(delta(t, 'ksm_scorer_cache_hits_total', { kind: 'vm' })).toBe(1);
    expect(delta(t, 'ksm_scorer_cache_misses_total', { kind: 'host' })).toBe(2);
    expect(delta(t, 'ksm_scorer_on_demand_fetches_total', { kind: 'vm', outcome: 'not_found' })).toBe(0);
    expect(valueOf(t, 'ksm_scorer_cache_evictions_total')).toBe(0);
  });

  it('score tables: memory by part and tables kept, growing as OS identities and host lists are asked for', async () => {
    const hostIds = [...sim.inventory.hosts.keys()];
    const before = await text();
    const bytes = (t: string, part: string) => valueOf(t, 'ksm_scorer_score_table_bytes', { part }) ?? 0;
    const tables = valueOf(before, 'ksm_scorer_score_tables')!;
    await score({ os: { type: 'metrics_test_os' }, host_ids: hostIds.slice(0, 3) });
    await score({ os: { type: 'metrics_test_os' }, host_ids: hostIds.slice(0, 3) }); // sent again: answered from the table's copy
    const t = await text();
    expect(valueOf(t, 'ksm_scorer_score_tables')).toBe(tables + 1);
    expect(bytes(t, 'tables')).toBeGreaterThan(bytes(before, 'tables'));
    expect(bytes(t, 'host_lists')).toBeGreaterThan(bytes(before, 'host_lists'));
    expect(bytes(t, 'index')).toBeGreaterThan(0);
    expect(valueOf(t, 'ksm_scorer_score_tables_evicted_total')).toBe(0);
  });

  it('no label carries an id, and every series has a HELP and a TYPE', async () => {
    const t = await text();
    const ids = [...sim.inventory.hosts.keys(), ...sim.inventory.vms.keys(), UNKNOWN_HOST, UNKNOWN_VM];
    for (const id of ids) expect(t).not.toContain(id);
    const families = new Set([...t.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    expect([...t.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1])).toEqual([...families]);
    for (const s of parseSamples(t))
      expect(families.has(s.name.replace(/_(bucket|sum|count)$/, '')) || families.has(s.name), s.name).toBe(true);
    // Node's process metrics are there too.
    for (const name of [
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_gc_duration_seconds_count',
    ]) {
      expect(
        parseSamples(t).some((s) => s.name === name),
        name,
      ).toBe(true);
    }
  });

  it('docs/observability.md lists every gRPC and ksm_scorer_ metric the service exports', async () => {
    const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'observability.md'), 'utf8');
    const families = [...(await text()).matchAll(/^# TYPE ((?:grpc|ksm_scorer)_\S+) /gm)].map((m) => m[1]!);
    expect(families.length).toBeGreaterThanOrEqual(18);
    for (const name of families) expect(doc, name).toContain(`| \`${name}\` |`);
  });

  it('OpenMetrics when the Accept header asks for it, the Prometheus text format after as before', async () => {
    const om = await scrape(port, 'application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1');
    expect(om.contentType).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    expect(om.text.endsWith('# EOF\n')).toBe(true);
    expect(om.text).toMatch(/^# TYPE grpc_server_handled counter$/m);
    expect(om.text).toMatch(/^grpc_server_handled_total\{.*grpc_code="OK".*\} \d+$/m);
    const prom = await scrape(port, 'text/plain');
    expect(prom.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(prom.text).toMatch(/^# TYPE grpc_server_handled_total counter$/m);
    expect(prom.text).not.toContain('# EOF');
  });

  it('answers 404 off /metrics, 405 to other methods, 431 to oversized headers, and keeps serving', async () => {
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metrics/../secret`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST', body: 'x' })).status).toBe(405);
    expect((await fetch(`${base}/metrics`, { headers: { 'x-big': 'a'.repeat(64 * 1024) } })).status).toBe(431);
    expect((await fetch(`${base}/metrics?x=1`, { method: 'HEAD' })).status).toBe(200);
    const many = await Promise.all(
      Array.from({ length: 20 }, (_, i) => scrape(port, i % 2 === 0 ? 'application/openmetrics-text' : undefined)),
    );
    for (const [i, r] of many.entries()) expect(r.text.includes('# EOF'), String(i)).toBe(i % 2 === 0);
  });
});

describe('scheduler proxy (XML-RPC) calls', () => {
  it('are counted by method and outcome, with unknown names and unreadable bodies under bounded labels', async () => {
    const sim = await startSimulator();
    const scorer = await startScorer(sim, { KSM_SCORER_OVIRT_PROXY_LISTEN: '127.0.0.1:0' });
    try {
      const port = scorer.service.ovirtProxyPort!;
      const vm = [...sim.inventory.vms.values()].find((v) => v.hostId !== undefined)!;
      await call(port, engineCostCall(vm.id, [...sim.inventory.hosts.keys()]));
      await call(port, apacheCall('system.listMethods', []));
      const unknown = 'no.such.method.5c1e';
      await expectFault(port, apacheCall(unknown, []));
      await expectFault(port, '<methodCall><methodName>runCostFunctions</method');
      const t = (await scrape(scorer.service.metricsPort!)).text;
      expect(valueOf(t, 'ksm_scorer_xmlrpc_calls_total', { method: 'runCostFunctions', outcome: 'ok' })).toBe(1);
      expect(valueOf(t, 'ksm_scorer_xmlrpc_calls_total', { method: 'system.listMethods', outcome: 'ok' })).toBe(1);
      expect(valueOf(t, 'ksm_scorer_xmlrpc_calls_total', { method: 'unknown', outcome: 'fault' })).toBe(1);
      expect(valueOf(t, 'ksm_scorer_xmlrpc_calls_total', { method: 'none', outcome: 'fault' })).toBe(1);
      expect(valueOf(t, 'ksm_scorer_xmlrpc_call_duration_seconds_count', { method: 'runCostFunctions' })).toBe(1);
      expect(t).not.toContain(unknown);
      expect(t).not.toContain(vm.id);
    } finally {
      await scorer.close();
      await sim.stop();
    }
  });
});

describe('the metrics listener alone', () => {
  it('cuts a client that never finishes its request, and a truncated one', async () => {
    const listener = new MetricsListener(new Metrics(), silentLogger, { requestTimeoutMs: 300 });
    const port = await listener.listen({ host: '127.0.0.1', port: 0 });
    try {
      for (const partial of ['GET /metrics HTTP/1.1\r\nHost: x\r\n', 'GET /met']) {
        const socket = connect(port, '127.0.0.1');
        socket.on('error', () => {});
        socket.write(partial);
        const closed = await new Promise<boolean>((resolve) => {
          socket.on('close', () => resolve(true));
          setTimeout(() => resolve(false), 10_000).unref();
        });
        expect(closed, JSON.stringify(partial)).toBe(true);
      }
      expect((await scrape(port)).text).toBe('\n');
    } finally {
      await listener.close();
    }
  });

  it('garbage instead of HTTP gets 400 and the connection closed', async () => {
    const listener = new MetricsListener(new Metrics(), silentLogger);
    const port = await listener.listen({ host: '127.0.0.1', port: 0 });
    try {
      const socket = connect(port, '127.0.0.1');
      let answer = '';
      socket.on('data', (d) => (answer += d.toString()));
      socket.write('\x00\x01\x02 not http at all\r\n\r\n');
      await new Promise((resolve) => socket.on('close', resolve));
      expect(answer).toMatch(/^HTTP\/1\.1 400/);
    } finally {
      await listener.close();
    }
  });
});

describe('metrics off', () => {
  it('KSM_SCORER_METRICS_LISTEN empty or off: no listener, and the service works', async () => {
    const sim = await startSimulator();
    try {
      for (const value of ['', 'off']) {
        const scorer = await startScorer(sim, { KSM_SCORER_METRICS_LISTEN: value });
        try {
          expect(scorer.service.metricsPort).toBeUndefined();
          const res = await unary<ScoreHostsRequest, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', {
            os: { type: 'rhel_8x64' },
          });
          expect(res.scores.length).toBe(8);
        } finally {
          await scorer.close();
        }
      }
    } finally {
      await sim.stop();
    }
  });

  it('a metrics port already taken fails the start with the address named', async () => {
    const sim = await startSimulator();
    const taken = new MetricsListener(new Metrics(), silentLogger);
    const port = await taken.listen({ host: '127.0.0.1', port: 0 });
    try {
      await expect(startScorer(sim, { KSM_SCORER_METRICS_LISTEN: `127.0.0.1:${port}` })).rejects.toThrow(`127.0.0.1:${port}`);
    } finally {
      await taken.close();
      await sim.stop();
    }
  });
});

async function waitUntilAsync(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
