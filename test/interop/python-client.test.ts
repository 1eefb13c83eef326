/**
 * A scheduler in another language: a Python client generated from the contract
 * with grpc_tools.protoc, on Google's gRPC (C core) and protobuf runtimes,
 * calls the real service and must decode exactly what the grpc-js client
 * decodes. This checks the hand-written codec against a second, independent
 * protobuf implementation, and the contract against a second code generator.
 * Needs Debian's python3-grpcio, python3-protobuf and python3-grpc-tools,
 * which `make test` installs (test/install-deps.sh).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScoreHostsBatchResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsBatchResponse';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import { PROTO_ROOT, SCORER_PROTO } from '../../src/contract/proto';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { type Scorer, startScorer, startSimulator, unary } from '../helpers';
import { makePki } from '../tls/pki';

const run = promisify(execFile);
const UNKNOWN = '00000000-0000-4000-8000-00000000beef';

interface PythonAnswer {
  ok?: {
    scores?: Record<string, unknown>[];
    results?: { scores: Record<string, unknown>[]; error?: { code: number; message: string } | null; scored_os?: unknown }[];
    scored_os?: unknown;
    inventory: Record<string, unknown>;
    [listing: string]: unknown;
  };
  code?: string;
  details?: string;
}

describe('a generated Python client (grpc_tools.protoc, grpcio, protobuf) against the real server', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer;
  const dir = mkdtempSync(join(tmpdir(), 'ksm-interop-'));

  beforeAll(async () => {
    sim = await startSimulator({ hosts: 8, vms: 200, seed: 13 });
    scorer = await startScorer(sim);
    // What a scheduler author runs (see README), into a directory of its own.
    await run(
      '/usr/bin/python3',
      ['-m', 'grpc_tools.protoc', '-I', PROTO_ROOT, `--python_out=${dir}`, `--grpc_python_out=${dir}`, SCORER_PROTO],
      { timeout: 30_000 },
    );
  });
  afterAll(async () => {
    await scorer.close();
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const python = async (
    calls: { method: string; request: unknown }[],
    address = scorer.address,
    tlsFiles: string[] = [],
  ): Promise<PythonAnswer[]> => {
    const file = join(dir, `calls-${Date.now()}.json`);
    writeFileSync(file, JSON.stringify(calls));
    const { stdout } = await run('/usr/bin/python3', [join(__dirname, 'python_client.py'), address, dir, file, ...tlsFiles], {
      timeout: 30_000,
    });
    return JSON.parse(stdout) as PythonAnswer[];
  };

  /** What the grpc-js client decoded, in the JSON mapping's shape. */
  const asJson = (s: {
    host_id: string;
    score: number;
    vm_count: number;
    same_type_count: number;
    same_version_count: number;
    found: boolean;
  }) => ({
    host_id: s.host_id,
    score: s.score,
    vm_count: s.vm_count,
    same_type_count: s.same_type_count,
    same_version_count: s.same_version_count,
    found: s.found,
  });

  it('decodes ScoreHosts, ScoreHostsBatch and errors exactly as grpc-js does', async () => {
    const hosts = [...sim.inventory.hosts.keys()];
    const vm = [...sim.inventory.vms.values()].find((v) => v.hostId !== undefined)!;
    const byOs = { os: { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' }, host_ids: [...hosts.slice(0, 5), UNKNOWN] };
    const byVm = { vm_id: vm.id };
    const batch = { requests: [byOs, { vm_id: 'nope' }, byVm] };

    const [pyOs, pyVm, pyBatch, pyBad] = await python([
      { method: 'ScoreHosts', request: byOs },
      { method: 'ScoreHosts', request: byVm },
      { method: 'ScoreHostsBatch', request: batch },
      { method: 'ScoreHosts', request: { host_ids: hosts.slice(0, 1) } },
    ]);
    const jsOs = await unary<unknown, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', byOs);
    const jsVm = await unary<unknown, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', byVm);
    const jsBatch = await unary<unknown, ScoreHostsBatchResponse__Output>(scorer.client, 'ScoreHostsBatch', batch);

    expect(pyOs!.ok!.scores).toEqual(jsOs.scores.map(asJson));
    expect(pyOs!.ok!.scores!.some((s) => (s.score as number) > 0 && !Number.isInteger(s.score))).toBe(true);
    expect(pyVm!.ok!.scores).toEqual(jsVm.scores.map(asJson));
    expect(pyBatch!.ok!.results!.map((r) => r.scores)).toEqual(jsBatch.results.map((r) => r.scores.map(asJson)));
    expect(pyBatch!.ok!.results![1]!.error).toEqual({ code: 3, message: 'requests[1].vm_id: not a UUID: "nope"' });

    const inv = pyOs!.ok!.inventory;
    expect(inv).toMatchObject({
      stale: false,
      generation: jsOs.inventory!.generation,
      host_count: jsOs.inventory!.host_count,
      vm_count: jsOs.inventory!.vm_count,
    });
    const ts = jsOs.inventory!.refreshed_at!;
    expect(Date.parse(inv.refreshed_at as string)).toBe(Number(ts.seconds) * 1000 + ts.nanos / 1e6);

    expect(pyBad).toEqual({ code: 'INVALID_ARGUMENT', details: 'vm: set either vm_id or os' });

    // scored_os, a field added after the first release, through both runtimes
    expect(pyOs!.ok!.scored_os).toEqual(jsOs.scored_os);
    expect(pyVm!.ok!.scored_os).toEqual(jsVm.scored_os);
    expect(pyBatch!.ok!.results!.map((r) => r.scored_os ?? null)).toEqual(jsBatch.results.map((r) => r.scored_os));
  });

  it('decodes ListOperatingSystems, ListHosts and ListVms exactly as grpc-js does', async () => {
    const host = [...sim.inventory.hosts.keys()][1]!;
    const calls = [
      { method: 'ListOperatingSystems', request: {} },
      { method: 'ListHosts', request: {} },
      { method: 'ListVms', request: { host_id: host, max_results: 5 } },
      { method: 'ListVms', request: { host_id: UNKNOWN } },
    ];
    const [pyOs, pyHosts, pyVms, pyUnknown] = await python(calls);
    const js = await Promise.all(calls.slice(0, 3).map((c) => unary<unknown, Record<string, unknown>>(scorer.client, c.method, c.request)));
    const [jsOs, jsHosts, jsVms] = js.map(({ inventory: _inventory, ...rest }) => rest);

    expect(pyOs!.ok!.operating_systems).toEqual(jsOs!.operating_systems);
    expect((pyOs!.ok!.operating_systems as unknown[]).length).toBeGreaterThan(5);
    expect(pyHosts!.ok!.hosts).toEqual(jsHosts!.hosts);
    expect(pyHosts!.ok!.hosts).toHaveLength(8);
    expect(pyVms!.ok!.vms).toEqual(jsVms!.vms);
    expect(pyVms!.ok!.total_count).toBe(jsVms!.total_count);
    expect(pyUnknown).toEqual({ code: 'NOT_FOUND', details: `host_id: the inventory has no host ${UNKNOWN}` });
  });

  it('connects over mutual TLS (certificates made by openssl at test time); without a client certificate it is refused', async () => {
    const pki = makePki();
    const secure = await startScorer(sim, {
      KSM_SCORER_TLS_CERT: pki.server.cert,
      KSM_SCORER_TLS_KEY: pki.server.key,
      KSM_SCORER_TLS_CLIENT_CA: pki.ca,
    });
    try {
      const call = [{ method: 'ScoreHosts', request: { os: { type: 'rhel_8x64', version: '' } } }];
      const [answer] = await python(call, secure.address, [pki.ca, pki.client.cert, pki.client.key]);
      expect(answer!.ok!.scores).toHaveLength(8);
      const [refused] = await python(call, secure.address, [pki.ca]);
      expect(refused!.code).toBe('UNAVAILABLE');
    } finally {
      await secure.close();
      pki.remove();
    }
  });
});
