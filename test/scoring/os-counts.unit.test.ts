import { describe, expect, it } from 'vitest';
import { bump, countOs, emptyCounts, withVm } from '../../src/scoring/os-counts';

const rhel86 = { type: 'rhel_8x64', version: '8.6' };
const rhel88 = { type: 'rhel_8x64', version: '8.8' };
const win = { type: 'windows_2022', version: '' };
const plain = (c: ReturnType<typeof countOs>) => ({
  vmCount: c.vmCount,
  byType: Object.fromEntries([...c.byType].map(([t, v]) => [t, { total: v.total, byVersion: Object.fromEntries(v.byVersion) }])),
});

describe('per-host OS counts', () => {
  it('countOs: two 8.6, one 8.8 and one Windows', () => {
    expect(plain(countOs([rhel86, rhel86, rhel88, win]))).toEqual({
      vmCount: 4,
      byType: { rhel_8x64: { total: 3, byVersion: { '8.6': 2, '8.8': 1 } }, windows_2022: { total: 1, byVersion: { '': 1 } } },
    });
  });

  it('bump removes entries that reach zero, so an emptied host looks like a new one', () => {
    const c = emptyCounts();
    bump(c, rhel86, +1);
    bump(c, rhel86, -1);
    expect(plain(c)).toEqual({ vmCount: 0, byType: {} });
  });

  it('withVm copies: the counts a snapshot shares are never changed', () => {
    const before = countOs([rhel86, rhel88]);
    const added = withVm(before, rhel86, +1); // 2 x 8.6 + 1 x 8.8 = 3
    const removed = withVm(before, rhel88, -1); // 1 x 8.6 = 1
    expect(plain(before)).toEqual({ vmCount: 2, byType: { rhel_8x64: { total: 2, byVersion: { '8.6': 1, '8.8': 1 } } } });
    expect(plain(added)).toEqual({ vmCount: 3, byType: { rhel_8x64: { total: 3, byVersion: { '8.6': 2, '8.8': 1 } } } });
    expect(plain(removed)).toEqual({ vmCount: 1, byType: { rhel_8x64: { total: 1, byVersion: { '8.6': 1 } } } });
  });

  it('withVm taking away an OS the host does not run changes nothing (a VM the last read never saw there)', () => {
    const before = countOs([rhel86]);
    expect(withVm(before, win, -1)).toBe(before);
  });
});
