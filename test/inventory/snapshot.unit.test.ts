/** The snapshot as pure data: built from engine pages, changed by events into a new one. No HTTP. */
import { describe, expect, it } from 'vitest';
import { eventTargets } from '../../src/inventory/events';
import { applyChanges, SnapshotBuilder } from '../../src/inventory/snapshot';
import { VmIndex } from '../../src/inventory/vm-index';
import type { EngineHost, EngineVm } from '../../src/ovirt/model';
import { RecordRejections } from '../../src/ovirt/rejections';

const H1 = '10000000-0000-4000-8000-000000000001';
const H2 = '10000000-0000-4000-8000-000000000002';
const V1 = '20000000-0000-4000-8000-000000000001';
const V2 = '20000000-0000-4000-8000-000000000002';
const V3 = '20000000-0000-4000-8000-000000000003';
const rhel = { type: 'rhel_8x64', version: '8.6' };
const win = { type: 'windows_2022', version: '' };
const vm = (id: string, hostId: string | undefined, os = rhel): EngineVm => ({ id, hostId, os });
const host = (id: string, name: string): EngineHost => ({ id, name, clusterId: undefined, status: 'up' });

const build = (pages: EngineVm[][]) => {
  const b = new SnapshotBuilder([host(H1, 'h1'), host(H2, 'h2')], []);
  for (const page of pages) b.addVms(page);
  return b.build({ generation: 1, refreshedAt: 1_000 });
};

describe('SnapshotBuilder', () => {
  it('joins VMs to hosts on host.id; a VM that is not running counts nowhere', () => {
    const s = build([[vm(V1, H1), vm(V2, H1, win), vm(V3, undefined)]]);
    expect(s).toMatchObject({ generation: 1, refreshedAt: 1_000, hostCount: 2, vmCount: 3, hostIds: [H1, H2] });
    expect(s.hosts.get(H1)?.vmCount).toBe(2);
    expect(s.hosts.get(H2)?.vmCount).toBe(0);
    expect(s.vms.get(V3)).toEqual({ hostId: undefined, os: rhel });
  });

  it('start() takes the hosts a slice at a time and builds the same snapshot, duplicates across slices included', async () => {
    // 1,201 hosts in slices of 500; host 3 listed again in the third slice, host 600 again in the second.
    const ids = Array.from({ length: 1_201 }, (_, i) => `30000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    const hosts = ids.map((id, i) => host(id, `h${i}`));
    hosts.splice(1_100, 0, host(ids[3]!, 'again'));
    hosts.splice(700, 0, host(ids[600]!, 'again'));
    const vms = ids.map((id, i) => vm(`40000000-0000-4000-8000-${String(i).padStart(12, '0')}`, id, i % 3 === 0 ? win : rhel));
    const made = (b: SnapshotBuilder) => {
      b.addVms(vms);
      const s = b.build({ generation: 1, refreshedAt: 1 });
      return { ids: s.hostIds, counts: s.hostIds.map((id) => s.hosts.get(id)!.typeCount('windows_2022')), details: [...s.hostDetails] };
    };
    const inOneGo = new RecordRejections();
    const inSlices = new RecordRejections();
    const sliced = made(await SnapshotBuilder.start(hosts, [], inSlices));
    expect(sliced).toEqual(made(new SnapshotBuilder(hosts, [], inOneGo)));
    expect(sliced.ids).toHaveLength(1_201);
    const leftOut = inSlices.take();
    expect(leftOut?.reasons['host/duplicate']).toBe(2); // hosts 3 and 600, listed twice
    expect(leftOut).toEqual(inOneGo.take());
  });

  it('a VM seen on two pages (it migrated while paging) counts once, where it was seen last', () => {
    const s = build([[vm(V1, H1)], [vm(V1, H2)]]);
    expect(s.vmCount).toBe(1);
    expect(s.hosts.get(H1)?.vmCount).toBe(0); // 1 - 1
    expect(s.hosts.get(H2)?.vmCount).toBe(1);
  });

  it('a host, cluster or VM listed twice is kept once and counted as a duplicate (not as left out)', () => {
    const rejections = new RecordRejections();
    const b = new SnapshotBuilder(
      [host(H1, 'h1'), host(H1, 'h1')],
      [
        { id: H2, name: 'c', ksmEnabled: true },
        { id: H2, name: 'c', ksmEnabled: true },
      ],
      rejections,
    );
    b.addVms([vm(V1, H1)]);
    b.addVms([vm(V1, H1)]);
    const s = b.build({ generation: 1, refreshedAt: 0 });
    expect(s.hostIds).toEqual([H1]);
    expect(s.hosts.get(H1)?.vmCount).toBe(1); // 1 - 1 + 1
    expect(rejections.take()).toMatchObject({ leftOut: 0, reasons: { 'host/duplicate': 1, 'cluster/duplicate': 1, 'vm/duplicate': 1 } });
  });

  it('a VM on a host the host list lacks is kept with its host id, counts toward no listed host, and the host is reported', () => {
    const H9 = '10000000-0000-4000-8000-000000000009';
    const b = new SnapshotBuilder([host(H1, 'h1')], []);
    b.addVms([vm(V1, H9), vm(V2, H9), vm(V3, H1)]);
    b.addVms([vm(V2, H1)]); // seen again, on a listed host: no longer on H9
    const s = b.build({ generation: 1, refreshedAt: 0 });
    expect(s.vmCount).toBe(3);
    expect(s.vms.get(V1)).toEqual({ hostId: H9, os: rhel });
    expect(s.hosts.has(H9)).toBe(false);
    expect(s.hosts.get(H1)?.vmCount).toBe(2); // V3 and V2
    expect([...b.unlistedHosts]).toEqual([[H9, 1]]); // 2 - 1
  });
});

describe('applyChanges', () => {
  it('moves a migrated VM and leaves the old snapshot as it was', () => {
    const before = build([[vm(V1, H1), vm(V2, H1)]]);
    const after = applyChanges(before, { vms: new Map([[V1, vm(V1, H2)]]), hosts: new Map() }, 2_000);
    expect(after).toMatchObject({ generation: 2, refreshedAt: 2_000, vmCount: 2 });
    expect([after.hosts.get(H1)?.vmCount, after.hosts.get(H2)?.vmCount]).toEqual([1, 1]); // 2 - 1, 0 + 1
    expect([before.hosts.get(H1)?.vmCount, before.hosts.get(H2)?.vmCount]).toEqual([2, 0]);
    expect(before.vms.get(V1)?.hostId).toBe(H1);
  });

  it('a removed VM leaves its host; a removed host leaves the list; a re-read host takes the engine counts as they are', () => {
    const before = build([[vm(V1, H1), vm(V2, H2)]]);
    const after = applyChanges(
      before,
      {
        vms: new Map([[V1, null]]),
        hosts: new Map([
          [H2, null],
          [
            '10000000-0000-4000-8000-000000000003',
            { host: host('10000000-0000-4000-8000-000000000003', 'h3'), vms: [vm(V3, '10000000-0000-4000-8000-000000000003', win)] },
          ],
        ]),
      },
      2_000,
    );
    expect(after.hostIds).toEqual([H1, '10000000-0000-4000-8000-000000000003']);
    expect(after.hosts.get(H1)?.vmCount).toBe(0);
    expect(after.hosts.get(H2)).toBeUndefined();
    expect(after.hosts.get('10000000-0000-4000-8000-000000000003')?.typeCount('windows_2022')).toBe(1);
    expect(after.vms.get(V1)).toBeUndefined();
  });
});

describe('VmIndex', () => {
  it('layers changes over a shared base: size follows adds and removals', () => {
    const base = VmIndex.of(new Map([[V1, { hostId: H1, os: rhel }]]));
    const next = base.with(
      new Map([
        [V1, null],
        [V2, { hostId: H2, os: win }],
      ]),
    );
    expect([base.size, next.size]).toEqual([1, 1]); // 1 - 1 + 1
    expect(next.get(V1)).toBeUndefined();
    expect(base.get(V1)?.hostId).toBe(H1);
    expect(next.with(new Map([[V3, { hostId: undefined, os: rhel }]])).size).toBe(2);
  });
});

describe('eventTargets', () => {
  it('re-reads the VMs and hosts that VM and host events name, and moves the poll past the newest id', () => {
    const t = eventTargets(
      [
        { id: 12, code: 63, vmId: V1, hostId: H1 }, // VM_MIGRATION_DONE: the VM
        { id: 11, code: 42, vmId: undefined, hostId: H2 }, // host added
        { id: 10, code: 9999, vmId: V2, hostId: undefined }, // unrelated event
      ],
      9,
    );
    expect([...t.vmIds]).toEqual([V1]);
    expect([...t.hostIds]).toEqual([H2]);
    expect(t.lastId).toBe(12);
  });
});
