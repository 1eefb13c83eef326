/**
 * `engine record` and OVIRT_URL=file:DIR: a recording made from the
 * simulated engine (several VM pages) holds no credential or token, replays
 * to the same scores and the same engine status, also anonymized (names
 * gone, ids and OS kept); a directory that is not a recording is refused at
 * start with a message naming it.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load';
import { loadEngineStatusProto } from '../../src/engine-view/service';
import type { GetEngineStatusResponse__Output } from '../../src/generated/ksmscorer/v1/GetEngineStatusResponse';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import { silentLogger } from '../../src/log';
import { recordAnswers } from '../../src/recording/record';
import { startService } from '../../src/service';
import type { SimulatedEngine } from '../../src/simulator/engine';
import * as grpc from '@grpc/grpc-js';
import { engineClient, type Scorer, startScorer, startSimulator, unary } from '../helpers';

const PAGE = 100;

function allFiles(dir: string): string {
  return readdirSync(dir)
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
}

async function scores(s: Scorer, vmIds: readonly string[]): Promise<unknown[]> {
  const out = [];
  for (const vm_id of vmIds) {
    const res = await unary<object, ScoreHostsResponse__Output>(s.client, 'ScoreHosts', { vm_id });
    out.push({ vm_id, os: res.scored_os, scores: res.scores });
  }
  return out;
}

async function engineState(s: Scorer): Promise<GetEngineStatusResponse__Output> {
  await s.service.engineView.refresh();
  const client = new (loadEngineStatusProto().ksmscorer.v1.EngineStatusService)(
    s.address,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client;
  try {
    return await unary<object, GetEngineStatusResponse__Output>(client, 'GetEngineStatus', {});
  } finally {
    client.close();
  }
}

describe('engine record and replay', () => {
  let sim: SimulatedEngine;
  const dirs: string[] = [];
  const newDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'ksm-recording-'));
    dirs.push(d);
    return join(d, 'rec');
  };
  let sample: string[];

  beforeAll(async () => {
    sim = await startSimulator({ hosts: 45, vms: 350 });
    // Names as a site has them, in the lists and in event texts.
    const host = sim.inventory.addHostWithEvent('hv-prod-17.corp.example');
    const vm = [...sim.inventory.vms.values()].find((v) => v.hostId === undefined)!;
    vm.name = 'payroll-db-01';
    sim.inventory.startVm(vm.id, host.id);
    // Running and stopped VMs, of several OS types, some on hosts of each cluster.
    sample = [...sim.inventory.vms.values()].filter((_, i) => i % 17 === 0).map((v) => v.id);
  });
  afterAll(async () => {
    await sim?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function record(anonymize: boolean): Promise<string> {
    const dir = newDir();
    const client = engineClient(sim, { pageSize: PAGE });
    try {
      await recordAnswers(client, dir, { anonymize, pageSize: PAGE, maxVms: 1_000_000 });
    } finally {
      await client.close();
    }
    return dir;
  }

  it('records hosts, clusters, every VM page, events and the scheduling set-up; no password, token or engine address in any file', async () => {
    const before = sim.requests.length;
    const dir = await record(false);
    const index = JSON.parse(readFileSync(join(dir, 'recording.json'), 'utf8')) as {
      anonymized: boolean;
      answers: { path: string; query: Record<string, string> }[];
    };
    expect(index.anonymized).toBe(false);
    const paths = index.answers.map((a) => a.path);
    expect(paths.filter((p) => p === '/vms')).toHaveLength(4); // 350 VMs, 100 a page: 4 pages, the last short
    expect(paths).toEqual(expect.arrayContaining(['/hosts', '/clusters', '/events', '/schedulingpolicyunits', '/schedulingpolicies']));
    expect(paths.filter((p) => /^\/schedulingpolicies\/[^/]+\/weights$/.test(p))).toHaveLength(sim.inventory.scheduling.policies.size);
    const text = allFiles(dir);
    const tokens = new Set(
      sim.requests
        .slice(before)
        .map((r) => String(r.headers.authorization ?? '').replace(/^Bearer /, ''))
        .filter((t) => t !== ''),
    );
    expect(tokens.size).toBeGreaterThan(0);
    for (const secret of [sim.password, ...tokens, sim.username, new URL(sim.url).host])
      expect(text, 'a secret or the engine address in the recording').not.toContain(secret);
  });

  it('the service serves a recording (OVIRT_URL=file:DIR) with the same scores and the same engine status as the engine it was recorded from', async () => {
    const dir = await record(false);
    // The replay first, alone: it must not ask the engine anything.
    const asked = sim.requests.length;
    const replay = await startScorer(sim, { OVIRT_URL: `file:${dir}` });
    const replayed = await scores(replay, sample);
    expect(sim.requests.length, 'requests to the live engine during the replay').toBe(asked);
    const live = await startScorer(sim);
    try {
      expect(replayed).toEqual(await scores(live, sample));
      expect(replayed.length).toBe(sample.length);
      const [a, b] = [await engineState(live), await engineState(replay)];
      expect(b.state).toBe(a.state);
      expect(b.advice).toEqual(a.advice);
      expect(b.engine!.clusters).toEqual(a.engine!.clusters);
    } finally {
      await live.close();
      await replay.close();
    }
  });

  it('--anonymize: no host, VM or cluster name is left; ids, OS types and versions are, so the scores are the same', async () => {
    const dir = await record(true);
    const text = allFiles(dir);
    const names = [...sim.inventory.hosts.values(), ...sim.inventory.vms.values(), ...sim.inventory.clusters.values()].map((x) => x.name);
    expect(names).toEqual(expect.arrayContaining(['hv-prod-17.corp.example', 'payroll-db-01']));
    expect(text.includes('payroll-db-01') || text.includes('hv-prod-17'), 'site names in the recording').toBe(false);
    for (const name of names)
      expect(text, name).not.toMatch(new RegExp(`"${name.replace(/[.]/g, '\\.')}"|\\b${name.replace(/[.]/g, '\\.')}\\b`));
    for (const vm of sim.inventory.vms.values()) expect(text).toContain(vm.id);
    expect(text).toContain('"host-0001"');
    expect(text).toContain('"vm-00001"');
    expect(text).toContain('"rhel_8x64"');
    expect(text).toContain('"full_version":"8.6"');
    expect(JSON.parse(readFileSync(join(dir, 'recording.json'), 'utf8')).anonymized).toBe(true);

    const live = await startScorer(sim);
    const replay = await startScorer(sim, { OVIRT_URL: `file:${dir}` });
    try {
      expect(await scores(replay, sample)).toEqual(await scores(live, sample));
    } finally {
      await live.close();
      await replay.close();
    }
  });

  it('records into an empty or new directory only, never over a recording', async () => {
    const dir = await record(false);
    const client = engineClient(sim, { pageSize: PAGE });
    try {
      await expect(recordAnswers(client, dir, { anonymize: false, pageSize: PAGE, maxVms: 1_000_000 })).rejects.toThrow(/is not empty/);
    } finally {
      await client.close();
    }
  });

  it('hostile recordings are refused at start, naming the file: missing, truncated, wrong format, a path out of the directory, an oversized answer, too many answers', async () => {
    const bad = newDir();
    const index = (answers: unknown) => JSON.stringify({ format: 'ksm-scorer-recording/1', recordedAt: '', anonymized: false, answers });
    const hosts = [{ path: '/hosts', query: {}, file: 'hosts.json' }];
    for (const [content, files, message] of [
      [undefined, {}, /recording\.json: not a readable recording index \(ENOENT\)/],
      ['{"format":"ksm-scorer-recording/1","answ', {}, /recording\.json: not a readable recording index \(not JSON\)/],
      ['{"format":"something-else","answers":[]}', {}, /not a ksm-scorer-recording\/1 index/],
      ['{"format":"ksm-scorer-recording/1","answers":{}}', {}, /not a ksm-scorer-recording\/1 index/],
      [index([{ path: '/hosts', file: '../../etc/passwd' }]), {}, /without a path or a plain file name/],
      [index([{ path: '/hosts', file: '..' }]), {}, /without a path or a plain file name/],
      [index([null]), {}, /without a path or a plain file name/],
      [index(hosts), {}, /hosts\.json: cannot read it \(ENOENT\)/],
      [index(hosts), { 'hosts.json': '{"host": [{"id": "a' }, /hosts\.json: not JSON/],
      [index(hosts), { 'hosts.json': '{"host": "none"}' }, /hosts\.json: not a list of host/],
      [index(hosts), { 'hosts.json': '[1, 2]' }, /hosts\.json: not a list of host/],
      [
        index(hosts),
        { 'hosts.json': `{"host": "${'x'.repeat(1_100_000)}"}` },
        /hosts\.json: 1100012 bytes, more than the 1048576 an answer may have \(OVIRT_MAX_ANSWER_MB\)/,
      ],
      [index(Array.from({ length: 20_001 }, () => hosts[0])), {}, /20001 answers, more than the 20000 read/],
    ] as const) {
      rmSync(bad, { recursive: true, force: true });
      mkdirSync(bad, { recursive: true });
      if (content !== undefined) writeFileSync(join(bad, 'recording.json'), content);
      for (const [name, text] of Object.entries(files)) writeFileSync(join(bad, name), text);
      const err = await startService(
        loadConfig({ OVIRT_URL: `file:${bad}`, KSM_SCORER_LISTEN: '127.0.0.1:0', OVIRT_MAX_ANSWER_MB: '1' }),
        silentLogger,
      ).then(
        async (s) => {
          await s.stop();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(new RegExp(`OVIRT_URL: file:${bad.replace(/[.]/g, '\\.')} is not a recording`));
      expect((err as Error).message).toMatch(message);
    }
  });
});
