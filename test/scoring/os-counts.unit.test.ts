import { describe, expect, it } from 'vitest';
import type { OsIdentity } from '../../src/ovirt/model';
import { HostOsCounts } from '../../src/scoring/os-counts';

const rhel86 = { type: 'rhel_8x64', version: '8.6' };
const rhel88 = { type: 'rhel_8x64', version: '8.8' };
const win = { type: 'windows_2022', version: '' };
/** OS "type version" -> VMs, in key order (the pairs have none). */
const plain = (c: HostOsCounts) => {
  const byOs: Record<string, number> = {};
  c.forEachOs((os, n) => (byOs[`${os.type} ${os.version}`] = n));
  return { vmCount: c.vmCount, byOs: Object.fromEntries(Object.entries(byOs).sort(([a], [b]) => (a < b ? -1 : 1))) };
};

describe('per-host OS counts', () => {
  it('of: two 8.6, one 8.8 and one Windows', () => {
    const c = HostOsCounts.of([rhel86, rhel86, rhel88, win]);
    expect(plain(c)).toEqual({ vmCount: 4, byOs: { 'rhel_8x64 8.6': 2, 'rhel_8x64 8.8': 1, 'windows_2022 ': 1 } });
    expect(c.typeCount('rhel_8x64')).toBe(3); // 2 x 8.6 + 1 x 8.8
    expect(c.osCount(rhel86)).toBe(2);
    expect(c.osCount({ type: 'rhel_8x64', version: '8.6' })).toBe(2); // an equal identity, another object
    expect(c.osCount({ type: 'rhel_8x64', version: '9.2' })).toBe(0);
    expect(c.typeCount('ubuntu_22_04')).toBe(0);
  });

  it('withVm copies: the counts a snapshot shares are never changed', () => {
    const before = HostOsCounts.of([rhel86, rhel88]);
    const added = before.withVm(rhel86, +1); // 2 x 8.6 + 1 x 8.8 = 3
    const removed = before.withVm(rhel88, -1); // 1 x 8.6 = 1
    const another = before.withVm(win, +1); // 1 x 8.6 + 1 x 8.8 + 1 x Windows = 3
    expect(plain(before)).toEqual({ vmCount: 2, byOs: { 'rhel_8x64 8.6': 1, 'rhel_8x64 8.8': 1 } });
    expect(plain(added)).toEqual({ vmCount: 3, byOs: { 'rhel_8x64 8.6': 2, 'rhel_8x64 8.8': 1 } });
    expect(plain(removed)).toEqual({ vmCount: 1, byOs: { 'rhel_8x64 8.6': 1 } });
    expect(plain(another)).toEqual({ vmCount: 3, byOs: { 'rhel_8x64 8.6': 1, 'rhel_8x64 8.8': 1, 'windows_2022 ': 1 } });
  });

  it('withVm removes an OS whose last VM goes, so an emptied host looks like a new one', () => {
    const emptied = HostOsCounts.of([rhel86]).withVm(rhel86, -1);
    expect(plain(emptied)).toEqual(plain(HostOsCounts.of([])));
    expect(plain(emptied)).toEqual({ vmCount: 0, byOs: {} });
  });

  it('withVm costs the distinct OSes of the host, not its VMs: a host of 1,000 VMs of one OS reads that OS once', () => {
    // Found from outside: withVm once rebuilt the host VM by VM, so an events poll moving 500 VMs off a
    // host of 2,000 blocked each process for 240 ms. Counted here as reads of the OS's fields.
    let reads = 0;
    const counted: OsIdentity = {
      get type() {
        reads++;
        return 'rhel_8x64';
      },
      get version() {
        reads++;
        return '8.6';
      },
    };
    const host = HostOsCounts.of(Array.from({ length: 1_000 }, () => counted));
    reads = 0;
    const more = host.withVm(win, +1); // 1,000 of 8.6 + 1 of Windows = 1,001
    const fewer = host.withVm(counted, -1); // 999 of 8.6
    expect(reads).toBeLessThanOrEqual(4);
    expect(more.vmCount).toBe(1_001);
    expect(fewer.osCount(rhel86)).toBe(999);
  });

  it('withVm taking away an OS the host does not run changes nothing (a VM the last read never saw there)', () => {
    const before = HostOsCounts.of([rhel86]);
    expect(before.withVm(win, -1)).toBe(before);
  });

  it('encoded for another process and decoded: every host reads its own pairs, as before', () => {
    const oses = [rhel86, rhel88, win];
    const hosts = [HostOsCounts.of([rhel86, rhel86, win]), HostOsCounts.of([]), HostOsCounts.of([rhel88, rhel88, rhel88, rhel88])];
    const e = HostOsCounts.encode(hosts, (os) => oses.findIndex((o) => o.type === os.type && o.version === os.version));
    const [h0, h1, h2] = HostOsCounts.decode(structuredClone(e), oses);
    expect(plain(h0!)).toEqual({ vmCount: 3, byOs: { 'rhel_8x64 8.6': 2, 'windows_2022 ': 1 } });
    expect(plain(h1!)).toEqual({ vmCount: 0, byOs: {} });
    expect(plain(h2!)).toEqual({ vmCount: 4, byOs: { 'rhel_8x64 8.8': 4 } });
    expect(e.next.length).toBe(3); // one pair per host and OS, no more
  });

  it('filled in place: pairs added and taken away; a pair that reaches zero is gone; nothing to take away changes nothing', () => {
    const oses = [rhel86, rhel88];
    const { counts, builder: b } = HostOsCounts.toFill(3, oses);
    b.add(2, 0, +1);
    b.add(0, 1, +1);
    b.add(2, 0, +1);
    oses.push(win); // numbered by the caller as VMs arrive
    b.add(0, 2, +1);
    b.add(1, 0, +1);
    b.add(1, 0, -1); // a VM listed twice: counted where it was seen last
    b.add(1, 1, -1); // none to take away
    const [h0, h1, h2] = counts;
    expect(plain(h0!)).toEqual({ vmCount: 2, byOs: { 'rhel_8x64 8.8': 1, 'windows_2022 ': 1 } });
    expect(plain(h1!)).toEqual({ vmCount: 0, byOs: {} });
    expect(plain(h2!)).toEqual({ vmCount: 2, byOs: { 'rhel_8x64 8.6': 2 } });
    expect(h1!.osCount(rhel86)).toBe(0);
  });

  it('more pairs than the store first holds: it grows, and every host keeps its own', () => {
    const oses = Array.from({ length: 40 }, (_, i) => ({ type: `t${i % 8}`, version: String(i) }));
    const { counts, builder } = HostOsCounts.toFill(100, oses);
    for (let host = 0; host < 100; host++)
      for (let os = 0; os < 40; os++) for (let k = 0; k <= (host + os) % 3; k++) builder.add(host, os, +1);
    // host 7, OS 5: (7 + 5) % 3 + 1 = 1 VM; type t5 is OSes 5, 13, 21, 29, 37: (12, 20, 28, 36, 44) % 3 + 1 = 1 + 3 + 2 + 1 + 3 = 10
    expect(counts[7]!.osCount(oses[5]!)).toBe(1);
    expect(counts[7]!.typeCount('t5')).toBe(10);
    expect(counts[7]!.vmCount).toBe(Array.from({ length: 40 }, (_, os) => ((7 + os) % 3) + 1).reduce((a, b) => a + b, 0));
  });

  it('no hosts: none to fill', () => {
    expect(HostOsCounts.toFill(0, []).counts).toEqual([]);
  });
});
