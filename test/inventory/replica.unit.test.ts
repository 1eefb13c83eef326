/** Copies of the inventory in worker processes: encoded, sent (v8 serialization, as node:cluster's advanced mode), followed. */
import { deserialize, serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { decodeSnapshot, encodeSnapshot, followGeneration, type GenerationMessage, generationMessage } from '../../src/inventory/replica';
import { applyChanges, type InventoryChanges, type InventorySnapshot, SnapshotBuilder } from '../../src/inventory/snapshot';
import type { SnapshotUpdate } from '../../src/inventory/generation-sink';
import { hostListing, operatingSystems, vmListing } from '../../src/inventory/listings';
import type { EngineCluster, EngineHost, EngineVm, OsIdentity } from '../../src/ovirt/model';

/** Deterministic pseudo-random numbers (mulberry32), so a failure replays. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const id = (prefix: number, n: number) => `${prefix}0000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const OSES: OsIdentity[] = [
  { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' },
  { type: 'rhel_8x64', version: '' },
  { type: 'windows_2022', version: '' },
  { type: '', version: '' },
  { type: 'other_linux', version: 'Fedora 41' },
];

const CLUSTERS: EngineCluster[] = [
  { id: id(3, 1), name: 'prod', ksmEnabled: true },
  { id: id(3, 2), name: 'test', ksmEnabled: false },
];

/** Map entries in key order (keys are unique): a count map's insertion order is not observable. */
const byKey = (a: readonly [string, ...unknown[]], b: readonly [string, ...unknown[]]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** Everything a call can observe of a snapshot, in a comparable form (orders included: listings show them). */
function observable(s: InventorySnapshot) {
  const counts = (id: string) => {
    const c = s.hosts.get(id)!;
    const byOs: [string, number][] = [];
    c.forEachOs((os, n) => byOs.push([`${os.type} ${os.version}`, n]));
    return { vmCount: c.vmCount, byOs: byOs.sort(byKey) };
  };
  return {
    generation: s.generation,
    refreshedAt: s.refreshedAt,
    hostCount: s.hostCount,
    vmCount: s.vmCount,
    vmsSize: s.vms.size,
    hostIds: [...s.hostIds],
    hosts: s.hostIds.map(counts),
    hostDetails: s.hostIds.map((h) => s.hostDetails.get(h)),
    clusters: [...s.clusters.values()],
    vms: [...s.vms.entries()].map(([vm, p]) => [vm, p.hostId, p.os.type, p.os.version]),
    listings: [operatingSystems(s), hostListing(s), vmListing(s, undefined, 10), vmListing(s, s.hostIds[0], 3)],
  };
}

/** Through the channel as node:cluster sends it. */
const wire = <T>(message: T): T => deserialize(serialize(message)) as T;

function randomInventory(random: () => number) {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  const host = (n: number, name: string): EngineHost => ({
    id: id(1, n),
    name,
    // A cluster listed, one the cluster list lacks, or none; KSM running, not, or not said.
    clusterId: pick([...CLUSTERS.map((c) => c.id), id(3, 9), undefined]),
    status: pick(['up', 'maintenance', '']),
    ksmEnabled: pick([true, false, undefined]),
  });
  const hosts: EngineHost[] = Array.from({ length: 1 + Math.floor(random() * 8) }, (_, i) => host(i, `h${i}`));
  let nextVm = 0;
  const newVm = (): EngineVm => ({ id: id(2, nextVm++), hostId: random() < 0.2 ? undefined : pick(hosts).id, os: pick(OSES) });
  const builder = new SnapshotBuilder(hosts, CLUSTERS);
  for (let page = 0; page < 3; page++) builder.addVms(Array.from({ length: Math.floor(random() * 40) }, newVm));
  const first = builder.build({ generation: 1, refreshedAt: 1_000 });

  const removed: string[] = [];
  /** What an events poll could have read: VMs started, moved, stopped, changed, removed or back again; hosts re-read, added, removed. */
  const changesOf = (s: InventorySnapshot): InventoryChanges => {
    const vmIds = [...s.vms.entries()].map(([vm]) => vm);
    const vms = new Map<string, EngineVm | null>();
    const hostIds = [...s.hostIds];
    const hostChanges = new Map<string, { host: EngineHost; vms: readonly EngineVm[] } | null>();
    for (let i = Math.floor(random() * 6); i > 0; i--) {
      const r = random();
      if (r < 0.15 || vmIds.length === 0) vms.set(newVm().id, newVm());
      else if (r < 0.3) {
        const gone = pick(vmIds);
        vms.set(gone, null);
        removed.push(gone);
      } else if (r < 0.4 && removed.length > 0) {
        // Back under its old id: where it goes in the index's order must not depend on when a copy was made.
        const back = removed.splice(Math.floor(random() * removed.length), 1)[0]!;
        vms.set(back, { ...newVm(), id: back });
      } else {
        const vm = pick(vmIds);
        vms.set(vm, { id: vm, hostId: random() < 0.3 || hostIds.length === 0 ? undefined : pick(hostIds), os: pick(OSES) });
      }
    }
    const r = random();
    // A host removed while its VMs' placements still name it: the replica must keep that too.
    if (r < 0.2 && hostIds.length > 1) hostChanges.set(pick(hostIds), null);
    else if (r < 0.4) {
      const added = host(100 + Math.floor(random() * 50), 'new');
      hostChanges.set(added.id, { host: added, vms: [newVm(), newVm()].map((v) => ({ ...v, hostId: added.id })) });
    } else if (r < 0.6 && hostIds.length > 0) {
      const hostId = pick(hostIds);
      hostChanges.set(hostId, {
        host: { id: hostId, name: 're-read', clusterId: pick(CLUSTERS).id, status: 'up' },
        vms: [{ ...newVm(), hostId }],
      });
    }
    return { vms, hosts: hostChanges };
  };
  return { first, changesOf };
}

describe('snapshot replicas', () => {
  it('a snapshot encoded, sent and decoded is the same snapshot, on random inventories after random event changes', () => {
    for (let seed = 1; seed <= 150; seed++) {
      const random = rng(seed);
      const { first, changesOf } = randomInventory(random);
      let s = first;
      for (let step = 0; step < 8; step++) {
        expect(observable(decodeSnapshot(wire(encodeSnapshot(s)))), `seed ${seed} step ${step}`).toEqual(observable(s));
        s = applyChanges(s, changesOf(s), s.refreshedAt + 5_000);
      }
    }
  });

  it('a replica that follows every generation message holds what the primary holds, generation numbers included', () => {
    for (let seed = 1; seed <= 100; seed++) {
      const random = rng(seed);
      const { first, changesOf } = randomInventory(random);
      let primary = first;
      let replica = followGeneration(undefined, wire(generationMessage(primary, { kind: 'full' })));
      for (let step = 0; step < 10; step++) {
        const r = random();
        const update: SnapshotUpdate =
          r < 0.3 ? { kind: 'refreshed' } : r < 0.9 ? { kind: 'changes', changes: changesOf(primary) } : { kind: 'full' };
        const at = primary.refreshedAt + 5_000;
        primary =
          update.kind === 'changes'
            ? applyChanges(primary, update.changes, at)
            : Object.freeze({ ...primary, refreshedAt: at, generation: primary.generation + (update.kind === 'full' ? 1 : 0) });
        replica = followGeneration(replica, wire(generationMessage(primary, update)));
        expect(replica && observable(replica), `seed ${seed} step ${step} ${update.kind}`).toEqual(observable(primary));
      }
    }
  });

  it("a message that does not follow the replica's generation is refused (the worker then asks for a full copy)", () => {
    const { first, changesOf } = randomInventory(rng(3));
    const second = applyChanges(first, changesOf(first), 2_000);
    const third = applyChanges(second, changesOf(second), 3_000);
    const skipped: GenerationMessage = generationMessage(third, { kind: 'changes', changes: changesOf(second) });
    expect(followGeneration(first, skipped)).toBeUndefined();
    expect(followGeneration(undefined, skipped)).toBeUndefined();
    expect(followGeneration(first, { kind: 'refreshed', generation: 2, refreshedAt: 9_000 })).toBeUndefined();
    expect(followGeneration(first, { kind: 'refreshed', generation: 1, refreshedAt: 9_000 })?.refreshedAt).toBe(9_000);
  });

  it('costs typed arrays, not objects, per VM: under 80 bytes a VM on the wire, ids and their hash included', () => {
    const hosts = Array.from({ length: 100 }, (_, i) => ({ id: id(1, i), name: `h${i}`, clusterId: CLUSTERS[0]!.id, status: 'up' }));
    const builder = new SnapshotBuilder(hosts, CLUSTERS);
    builder.addVms(Array.from({ length: 10_000 }, (_, i) => ({ id: id(2, i), hostId: hosts[i % 100]!.id, os: OSES[i % OSES.length]! })));
    const bytes = serialize(encodeSnapshot(builder.build({ generation: 1, refreshedAt: 0 }))).length;
    // 36 (id) + 4 (host) + 4 (OS) + 8 to 16 (hash slots, at most half full) = 52 to 60, and the tables.
    expect(bytes / 10_000).toBeLessThan(80);
  });
});
