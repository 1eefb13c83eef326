/**
 * Python's standard xmlrpc.client as the caller (the old scheduler proxy's
 * own language): it must get the same weights as round(10 x (100 - score))
 * of gRPC ScoreHosts, as Python ints, and faults as xmlrpc.client.Fault.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import { UNIT_NAME } from '../../src/contract/scheduler-unit';
import { FaultCode } from '../../src/scheduler-proxy/xmlrpc-values';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { type Scorer, startScorer, startSimulator, unary } from '../helpers';

const run = promisify(execFile);
const UNKNOWN = '00000000-0000-4000-8000-00000000beef';

type Answer = { ok?: unknown; fault?: { code: number; message: string } };

describe('Python xmlrpc.client against the oVirt scheduler proxy', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer;
  const dir = mkdtempSync(join(tmpdir(), 'ksm-xmlrpc-'));

  beforeAll(async () => {
    sim = await startSimulator({ hosts: 12, vms: 400, seed: 29 });
    scorer = await startScorer(sim, { KSM_SCORER_OVIRT_PROXY_LISTEN: '127.0.0.1:0' });
  });
  afterAll(async () => {
    await scorer.close();
    await sim.stop();
  });

  const python = async (calls: { method: string; params: unknown[] }[]): Promise<Answer[]> => {
    const file = join(dir, `calls-${Date.now()}.json`);
    writeFileSync(file, JSON.stringify(calls));
    const url = `http://127.0.0.1:${scorer.service.ovirtProxyPort}/`;
    const { stdout } = await run('/usr/bin/python3', [join(__dirname, 'python_xmlrpc_client.py'), url, file], { timeout: 30_000 });
    return JSON.parse(stdout) as Answer[];
  };

  it('gets gRPC-equal weights as Python ints, for every VM kind and host order', async () => {
    const hostIds = [...sim.inventory.hosts.keys()];
    const vms = [...sim.inventory.vms.values()].slice(0, 30);
    const asked = vms.map((vm, i) => [...hostIds.slice(i % 5), UNKNOWN, ...hostIds.slice(0, i % 5)]);
    const answers = await python(vms.map((vm, i) => ({ method: 'runCostFunctions', params: [[[UNIT_NAME, 5]], asked[i], vm.id, {}] })));
    for (let i = 0; i < vms.length; i++) {
      const grpc = await unary<object, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', { vm_id: vms[i]!.id, host_ids: asked[i] });
      expect(answers[i]).toEqual({
        ok: {
          result_code: { int: 0 },
          result: grpc.scores.map((s, k) => [asked[i]![k], { int: Math.round(10 * (100 - s.score)) }, UNIT_NAME]),
          plugin_errors: {},
          errors: [],
        },
      });
    }
  });

  it('discover, introspection, filters, balancing, an unknown VM, and faults', async () => {
    const [discover, methods, signature, filters, balance, unknownVm, noMethod, arity] = await python([
      { method: 'discover', params: [] },
      { method: 'system.listMethods', params: [] },
      { method: 'system.methodSignature', params: ['runFilters'] },
      { method: 'runFilters', params: [['f'], [UNKNOWN], UNKNOWN, {}] },
      { method: 'runLoadBalancing', params: ['b', [UNKNOWN], {}] },
      { method: 'runCostFunctions', params: [[[UNIT_NAME, 1]], [...sim.inventory.hosts.keys()], UNKNOWN, {}] },
      { method: 'runEverything', params: [] },
      { method: 'runCostFunctions', params: [] },
    ]);
    expect(discover!.ok).toMatchObject({ filters: {}, balance: {}, scores: { [UNIT_NAME]: [expect.any(String), ''] } });
    expect(methods!.ok).toContain('runCostFunctions');
    expect(signature!.ok).toEqual([['struct', 'array', 'array', 'string', 'struct']]);
    expect(filters!.ok).toEqual({ result_code: { int: 0 }, result: [UNKNOWN], plugin_errors: {}, errors: [] });
    expect(balance!.ok).toMatchObject({ result: ['', []] });
    expect(unknownVm!.ok).toMatchObject({
      result_code: { int: 1 },
      result: [],
      plugin_errors: { [UNIT_NAME]: [expect.stringContaining(UNKNOWN)] },
    });
    expect(noMethod!.fault).toMatchObject({ code: FaultCode.methodNotFound });
    expect(arity!.fault).toMatchObject({ code: FaultCode.invalidParams, message: expect.stringMatching(/takes 4 parameters/) });
  });
});
