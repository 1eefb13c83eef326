/**
 * An engine as real ones are: records that do not fit together, optional
 * reads refused, whole answers broken. Each case runs the real service
 * against the simulated engine and checks from outside: health, scores
 * against a recomputation from the engine's own data, the log line and the
 * metric. Payloads are the simulator's, written as 4.4 writes them (integers
 * and booleans as strings, `{}` for an empty list).
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { ScoreHostsRequest } from '../../src/generated/ksmscorer/v1/ScoreHostsRequest';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import { createLogger } from '../../src/log';
import type { OsIdentity } from '../../src/ovirt/model';
import { osIdentity } from '../../src/ovirt/parse';
import { countOs } from '../../src/scoring/os-counts';
import { scoreHost } from '../../src/scoring/score';
import { hostJson, type SimulatedEngine, vmJson } from '../../src/simulator/engine';
import { type Scorer, startScorer, startSimulator, unary, waitUntil } from '../helpers';

const FAST = {
  KSM_SCORER_EVENTS_SECONDS: '0.2',
  KSM_SCORER_REFRESH_SECONDS: '300',
  KSM_SCORER_BACKOFF_MAX_SECONDS: '1',
  KSM_SCORER_MAX_STALENESS_SECONDS: '600',
  OVIRT_TIMEOUT_SECONDS: '2',
};
const RHEL: OsIdentity = { type: 'rhel_8x64', version: '' };
const GHOST = '6b0e0c1f-9d3a-4e2b-8c55-0a1b2c3d4e5f';

describe('an irregular engine', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer | undefined;
  let logs: string[];

  const start = async (env: Record<string, string> = {}, opts: { waitForInventory?: boolean } = {}) => {
    logs = [];
    scorer = await startScorer(sim, { ...FAST, ...env }, { logger: createLogger('debug', { write: (l) => logs.push(l) }), ...opts });
  };
  afterEach(async () => {
    sim.faults = {};
    await scorer?.close();
    scorer = undefined;
    await sim.stop();
  });

  const score = (req: ScoreHostsRequest) => unary<ScoreHostsRequest, ScoreHostsResponse__Output>(scorer!.client, 'ScoreHosts', req);
  const logged = (re: RegExp) => logs.filter((l) => re.test(l));
  const metrics = () => scorer!.service.metrics.render('text/plain').then((r) => r.body);
  const health = async (): Promise<string> => {
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as any;
    const client = new pkg.grpc.health.v1.Health(scorer!.address, grpc.credentials.createInsecure());
    try {
      return ((await unary(client, 'Check', { service: '' })) as { status: string }).status;
    } finally {
      client.close();
    }
  };
  /** What every host scores for `os`, from the engine's data as the simulator holds it: only `visible` hosts count. */
  const recomputed = (os: OsIdentity, visible = (_id: string) => true) =>
    Object.fromEntries(
      [...sim.inventory.hosts.values()]
        .filter((h) => visible(h.id))
        .map((h) => [h.id, scoreHost({ hostId: h.id, counts: countOs(sim.inventory.vmsOn(h.id).map((vm) => osIdentity(vmJson(vm)))), containsScoredVm: false }, os).score]),
    );
  const served = async (os: OsIdentity) => Object.fromEntries((await score({ os })).scores.map((s) => [s.host_id, s.score]));

  it('a VM on a host the account cannot see is kept: it scores by vm_id, the hidden host counts nothing, the log says why at the second refresh', async () => {
    sim = await startSimulator({ hosts: 8, vms: 200, seed: 11 });
    const hidden = [...sim.inventory.hosts.values()].find((h) => sim.inventory.vmsOn(h.id).length > 0)!;
    const onHidden = sim.inventory.vmsOn(hidden.id)[0]!;
    sim.hiddenHosts.add(hidden.id);
    await start();
    expect(await health()).toBe('SERVING');
    expect(await served(RHEL)).toEqual(recomputed(RHEL, (id) => id !== hidden.id));
    expect(logged(/host list lacks/)).toHaveLength(1);
    expect(await metrics()).toMatch(/^ksm_scorer_inventory_unlisted_hosts 1$/m);

    // Its id and OS are known: scored by vm_id like any other VM.
    const byVm = await score({ vm_id: onHidden.id });
    expect(byVm.scored_os).toEqual(osIdentity(vmJson(onHidden)));
    // Named by a call, the hidden host is read on demand; the engine says it has no such host: not found, 0.
    const named = await score({ os: RHEL, host_ids: [hidden.id] });
    expect(named.scores).toEqual([expect.objectContaining({ host_id: hidden.id, found: false, score: 0, vm_count: 0 })]);
    const listed = await unary<unknown, { vms: { id: string; host_id: string }[] }>(scorer!.client, 'ListVms', { max_results: 1000 });
    expect(listed.vms.find((v) => v.id === onHidden.id)?.host_id).toBe(hidden.id);

    // Still missing at the next full refresh: not a race, a permission.
    await scorer!.service.inventory.refresh();
    expect(logged(/probably lacks permission/)).toHaveLength(1);

    // Once the account may see it, it is listed and counted like the others.
    sim.hiddenHosts.clear();
    await scorer!.service.inventory.refresh();
    expect(await served(RHEL)).toEqual(recomputed(RHEL));
    expect(await metrics()).toMatch(/^ksm_scorer_inventory_unlisted_hosts 0$/m);
  });

  it('a host added between the /hosts and /vms reads: its VMs are kept, and the next refresh lists and counts it', async () => {
    sim = await startSimulator({ hosts: 6, vms: 100, seed: 12 });
    await start();
    let added: string | undefined;
    sim.faults.respond = (p) => {
      // The host appears, with a VM on it, just after the host list was read.
      if (p === '/vms' && added === undefined) {
        added = sim.inventory.addHost('late.example.com').id;
        sim.inventory.addVm({ osType: 'rhel_8x64', hostId: added });
      }
      return false;
    };
    const first = await scorer!.service.inventory.refresh();
    expect(first.hosts.has(added!)).toBe(false);
    expect(logged(/host list lacks/)).toHaveLength(1);
    expect(logged(/probably lacks permission/)).toHaveLength(0);
    await scorer!.service.inventory.refresh();
    expect(await served(RHEL)).toEqual(recomputed(RHEL));
    expect(logged(/probably lacks permission/)).toHaveLength(0);
  });

  it.each([403, 404])('/clusters answering %i: hosts load with their cluster unknown, the inventory stays fresh, one warning per sync names the status', async (status) => {
    sim = await startSimulator({ hosts: 6, vms: 100, seed: 13 });
    sim.faults.respond = (p, _req, res: ServerResponse) => {
      if (p !== '/clusters') return false;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ reason: 'Operation Failed', detail: '[User is not authorized to perform this action.]' }));
      return true;
    };
    await start();
    expect(await health()).toBe('SERVING');
    await scorer!.service.inventory.refresh();
    const warnings = logged(/clusters cannot be read/);
    expect(warnings).toHaveLength(2); // the first load and this refresh
    expect(JSON.parse(warnings[0]!)).toMatchObject({ status, endpoint: 'GET /clusters' });
    const hosts = await unary<unknown, { hosts: { cluster_id: string; cluster_name: string; ksm_enabled: boolean }[]; inventory: { stale: boolean } }>(scorer!.client, 'ListHosts', {});
    expect(hosts.inventory.stale).toBe(false);
    for (const h of hosts.hosts) expect(h).toMatchObject({ cluster_name: '', ksm_enabled: false });
    expect(await served(RHEL)).toEqual(recomputed(RHEL));
    expect(await metrics()).toMatch(/^ksm_scorer_engine_requests_total\{endpoint="GET \/clusters",status_class="4xx"\} 2$/m);
    // Readable again: the next full refresh has them.
    sim.faults.respond = undefined;
    await scorer!.service.inventory.refresh();
    expect((await unary<unknown, { hosts: { cluster_name: string }[] }>(scorer!.client, 'ListHosts', {})).hosts.every((h) => h.cluster_name !== '')).toBe(true);
  });

  it('hosts without a cluster element are scored like the others, their cluster unknown', async () => {
    sim = await startSimulator({ hosts: 6, vms: 100, seed: 14 });
    sim.faults.respond = (p, _req, res: ServerResponse) => {
      if (p !== '/hosts') return false;
      // As 4.4 writes a host, less its cluster: strings for numbers and booleans.
      const host = [...sim.inventory.hosts.values()].map((h) => ({ id: h.id, name: h.name, status: 'up', memory: '405874409472', ksm: { enabled: 'false' } }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ host }));
      return true;
    };
    await start();
    expect(await health()).toBe('SERVING');
    expect(await served(RHEL)).toEqual(recomputed(RHEL));
    const hosts = await unary<unknown, { hosts: { cluster_id: string; cluster_name: string }[] }>(scorer!.client, 'ListHosts', {});
    expect(hosts.hosts).toHaveLength(6);
    for (const h of hosts.hosts) expect(h).toMatchObject({ cluster_id: '', cluster_name: '' });
    expect(await metrics()).not.toMatch(/ksm_scorer_engine_records_rejected_total\{kind="host"/);
  });

  it('elements that 4.5 adds to hosts and VMs (and ones no version has) are ignored: the inventory loads as from 4.4', async () => {
    sim = await startSimulator({ hosts: 6, vms: 100, seed: 22 });
    sim.faults.respond = (p, _req, res: ServerResponse) => {
      // As a 4.5 engine writes them: strings for booleans and integers, empty collections as {}.
      const host = () => [...sim.inventory.hosts.values()].map((h) => ({ ...hostJson(h), vgpu_placement: 'consolidated', cpu_units: {}, network_operation_in_progress: 'false', reinstallation_required: 'false', cpu: { topology: { cores: '16', sockets: '2', threads: '2' }, type: 'Intel' } }));
      const vm = () =>
        sim.inventory.vmsByName().map((v) => ({ ...vmJson(v), tpm_enabled: 'false', auto_pinning_policy: 'disabled', cpu_pinning_policy: 'none', bios: { type: 'q35_ovmf' }, mediated_devices: {}, virtio_scsi_multi_queues: '0', storage_error_resume_behaviour: 'auto_resume' }));
      const body = p === '/hosts' ? { host: host() } : p === '/vms' ? { vm: vm() } : undefined;
      if (body === undefined) return false;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      return true;
    };
    await start({ OVIRT_PAGE_SIZE: '1000' });
    expect(await health()).toBe('SERVING');
    expect(await served(RHEL)).toEqual(recomputed(RHEL));
    expect(logged(/engine records left out/)).toHaveLength(0);
    expect(await metrics()).not.toMatch(/^ksm_scorer_engine_records_rejected_total\{/m);
  });

  it('events naming VMs and hosts the engine does not have change nothing and fail nothing', async () => {
    sim = await startSimulator({ hosts: 6, vms: 100, seed: 15 });
    await start();
    const before = await score({ os: RHEL });
    const next = sim.inventory.newestEventId() + 1;
    const time = Date.now();
    sim.inventory.events.push(
      { id: next, code: 61, time, description: 'VM ghost is down', vm: { id: GHOST, name: 'ghost' } }, // VM_DOWN
      { id: next + 1, code: 44, time, description: 'Host ghost was removed', host: { id: GHOST, name: 'ghost' } }, // USER_REMOVE_VDS
      { id: next + 2, code: 43, time, description: 'Host ghost was updated', host: { id: '7b0e0c1f-9d3a-4e2b-8c55-0a1b2c3d4e5f', name: 'ghost2' } },
    );
    await waitUntil(() => /GET \/vms\/\{id\}",status_class="4xx"/.test(logs.join('')) || scorer!.service.inventory.stats().eventPolls > 5, 10_000);
    await waitUntil(() => logged(/events applied/).some((l) => JSON.parse(l).events === 3), 10_000);
    const after = await score({ os: RHEL });
    expect(after.scores).toEqual(before.scores);
    expect(await served(RHEL)).toEqual(recomputed(RHEL));
    expect(after.inventory?.stale).toBe(false);
    expect(await health()).toBe('SERVING');
    expect(scorer!.service.inventory.stats().syncFailures).toBe(0);
    expect(await metrics()).toMatch(/^ksm_scorer_engine_requests_total\{endpoint="GET \/vms\/\{id\}",status_class="4xx"\} 1$/m);
    expect(await metrics()).toMatch(/^ksm_scorer_engine_requests_total\{endpoint="GET \/hosts\/\{id\}",status_class="4xx"\} 2$/m);
  });

  it('an event whose reference is not a UUID is left out and counted, and a full refresh makes sure nothing was missed', async () => {
    sim = await startSimulator({ hosts: 6, vms: 100, seed: 16 });
    await start();
    const fulls = scorer!.service.inventory.stats().fullRefreshes;
    sim.inventory.events.push({ id: sim.inventory.newestEventId() + 1, code: 61, time: Date.now(), description: 'odd', vm: { id: 'vm-17', name: 'odd' } });
    await waitUntil(() => scorer!.service.inventory.stats().fullRefreshes > fulls, 10_000);
    expect(JSON.parse(logged(/engine records left out/)[0]!)).toMatchObject({ leftOut: 1, reasons: { 'event/bad_reference': 1 } });
    expect(await metrics()).toMatch(/^ksm_scorer_engine_records_rejected_total\{kind="event",reason="bad_reference"\} 1$/m);
    // The next polls start after it: it is not read (or counted) again.
    const polls = scorer!.service.inventory.stats().eventPolls;
    await waitUntil(() => scorer!.service.inventory.stats().eventPolls > polls + 3, 10_000);
    expect(await metrics()).toMatch(/^ksm_scorer_engine_records_rejected_total\{kind="event",reason="bad_reference"\} 1$/m);
    expect(await health()).toBe('SERVING');
  });

  it('a VM an event names that reads back unusable is counted, and a full refresh (not a failed poll, again and again) follows', async () => {
    sim = await startSimulator({ hosts: 6, vms: 100, seed: 21 });
    await start();
    const vm = [...sim.inventory.vms.values()].find((v) => v.hostId !== undefined)!;
    sim.faults.respond = (p, _req, res: ServerResponse) => {
      if (p !== `/vms/${vm.id}`) return false;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...vmJson(vm), host: { id: 'Default' } }));
      return true;
    };
    const fulls = scorer!.service.inventory.stats().fullRefreshes;
    sim.inventory.migrateVm(vm.id, [...sim.inventory.hosts.keys()].find((id) => id !== vm.hostId)!);
    await waitUntil(() => scorer!.service.inventory.stats().fullRefreshes > fulls, 10_000);
    expect(scorer!.service.inventory.stats().syncFailures).toBe(0);
    expect(logged(/record the events named cannot be read: full refresh/)).toHaveLength(1);
    expect(await metrics()).toMatch(/^ksm_scorer_engine_records_rejected_total\{kind="vm",reason="bad_reference"\} 1$/m);
    expect(await served(RHEL)).toEqual(recomputed(RHEL));
    expect((await score({ os: RHEL })).inventory?.stale).toBe(false);
  });

  it('a /vms answer whose every record is invalid is not published: the last good inventory serves, ageing into stale, and the refusal is counted', async () => {
    sim = await startSimulator({ hosts: 6, vms: 100, seed: 17 });
    await start();
    const before = await score({ os: RHEL });
    sim.faults.respond = (p, _req, res: ServerResponse) => {
      if (p !== '/vms') return false;
      const vm = sim.inventory.vmsByName().map((v) => ({ ...vmJson(v), id: `vm-${v.name}` }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ vm }));
      return true;
    };
    const polls = scorer!.service.inventory.stats().eventPolls;
    await expect(scorer!.service.inventory.refresh()).rejects.toThrow(/not published.*100 of them \(94.3%\) cannot be used/);
    const after = await score({ os: RHEL });
    expect(after.scores).toEqual(before.scores);
    expect(after.inventory?.generation).toBe(before.inventory?.generation);
    // No events poll confirms held data: it ages (stale after 2 x 0.2 s) as in an outage, while every sync tries a full refresh again.
    await waitUntil(() => logged(/full refresh not published/).length >= 3, 10_000);
    expect(scorer!.service.inventory.stats().eventPolls).toBe(polls);
    expect((await score({ os: RHEL })).inventory?.stale).toBe(true);
    expect(await health()).toBe('SERVING');
    expect(logged(/full refresh not published/)[0]).toMatch(/KSM_SCORER_MAX_REJECTED_PERCENT=10%/);
    expect(await metrics()).toMatch(/^ksm_scorer_syncs_total\{kind="full",outcome="held"\} [2-9]/m);
    expect(await metrics()).toMatch(/^ksm_scorer_engine_records_rejected_total\{kind="vm",reason="bad_id"\} [1-9]\d\d/m);
    // Never published by agreement: the answer is as unusable each time.
    expect(String(scorer!.service.inventory.snapshot()?.generation)).toBe(before.inventory?.generation);
    // Good again: published, fresh.
    sim.faults.respond = undefined;
    await waitUntil(() => (scorer!.service.inventory.snapshot()?.generation ?? 0) > Number(before.inventory?.generation), 10_000);
    expect((await score({ os: RHEL })).inventory?.stale).toBe(false);
  });

  it('on a first load, an answer of invalid records is not published either: not ready until a usable one comes', async () => {
    sim = await startSimulator({ hosts: 6, vms: 100, seed: 18 });
    sim.faults.respond = (p, _req, res: ServerResponse) => {
      if (p !== '/vms') return false;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ vm: sim.inventory.vmsByName().map((v) => ({ ...vmJson(v), id: '' })) }));
      return true;
    };
    await start({}, { waitForInventory: false });
    await waitUntil(() => logged(/nothing is served until one is/).length >= 1, 10_000);
    expect(await health()).toBe('NOT_SERVING');
    sim.faults.respond = undefined;
    await waitUntil(() => scorer!.service.inventory.snapshot() !== undefined, 15_000);
    expect(await served(RHEL)).toEqual(recomputed(RHEL));
  });

  it('half the VMs gone in one refresh is held twice, then published when 3 refreshes in a row agree', async () => {
    sim = await startSimulator({ hosts: 6, vms: 200, seed: 19 });
    await start({ KSM_SCORER_EVENTS_SECONDS: '0', KSM_SCORER_REFRESH_SECONDS: '300', KSM_SCORER_MAX_STALENESS_SECONDS: '1200' });
    const before = await score({ os: RHEL });
    const vms = [...sim.inventory.vms.keys()];
    for (const id of vms.slice(0, 100)) sim.inventory.vms.delete(id);
    sim.inventory.version++;
    (sim.inventory as unknown as { byName: undefined }).byName = undefined;
    await expect(scorer!.service.inventory.refresh()).rejects.toThrow(/listed 100 VMs where the inventory has 200 \(50% fewer\).*\(1 so far\)/);
    await expect(scorer!.service.inventory.refresh()).rejects.toThrow(/\(2 so far\)/);
    expect((await score({ os: RHEL })).scores).toEqual(before.scores);
    expect(await health()).toBe('SERVING');
    const snap = await scorer!.service.inventory.refresh();
    expect(snap.vmCount).toBe(100);
    expect(await served(RHEL)).toEqual(recomputed(RHEL));
    expect(logged(/published after agreeing refreshes/)).toHaveLength(1);
    expect(await metrics()).toMatch(/^ksm_scorer_syncs_total\{kind="full",outcome="held"\} 2$/m);
  });

  it('a VM listed twice across pages (it migrated while paging) counts once, where it was listed last, and the duplicate is counted', async () => {
    sim = await startSimulator({ hosts: 6, vms: 120, seed: 20 });
    await start({ OVIRT_PAGE_SIZE: '50' });
    const byName = sim.inventory.vmsByName();
    const moving = byName.slice(1, 50).find((v) => v.hostId !== undefined)!; // not the first: two pages starting alike look like an engine ignoring `page`
    const to = [...sim.inventory.hosts.keys()].find((id) => id !== moving.hostId)!;
    sim.faults.respond = (p, req, res: ServerResponse) => {
      if (p !== '/vms') return false;
      const search = new URL(req.url!, 'http://x').searchParams.get('search') ?? '';
      const page = Number(/page (\d+)/.exec(search)?.[1] ?? 1);
      // Page 1 as it was; then the VM migrates and shows up again at the head of page 2, on its new host.
      if (page === 2) sim.inventory.vm(moving.id).hostId = to;
      const items = page === 1 ? byName.slice(0, 50) : [moving, ...byName.slice(50)].slice((page - 2) * 50, (page - 1) * 50);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(items.length === 0 ? {} : { vm: items.map(vmJson) }));
      return true;
    };
    const snap = await scorer!.service.inventory.refresh();
    expect(snap.vmCount).toBe(120);
    expect(snap.vms.get(moving.id)?.hostId).toBe(to);
    expect(await health()).toBe('SERVING');
    expect(await served(RHEL)).toEqual(recomputed(RHEL));
    expect(JSON.parse(logged(/listed twice/)[0]!)).toMatchObject({ leftOut: 0, reasons: { 'vm/duplicate': 1 } });
    expect(await metrics()).toMatch(/^ksm_scorer_engine_records_rejected_total\{kind="vm",reason="duplicate"\} 1$/m);
  });
});
