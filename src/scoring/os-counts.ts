/**
 * Per-host counts of VMs by OS identity, the data scoring reads: two numbers
 * (same type, same type and version) in O(1), so a host never costs a walk
 * over its VMs. `bump` is the one place a count changes.
 */
import type { OsIdentity } from '../ovirt/model';

export interface TypeCounts {
  readonly total: number;
  readonly byVersion: ReadonlyMap<string, number>;
}

export interface HostOsCounts {
  readonly vmCount: number;
  readonly byType: ReadonlyMap<string, TypeCounts>;
}

/** Counts while they are being built; handed out only as HostOsCounts. */
export interface MutableHostOsCounts {
  vmCount: number;
  byType: Map<string, { total: number; byVersion: Map<string, number> }>;
}

export const emptyCounts = (): MutableHostOsCounts => ({ vmCount: 0, byType: new Map() });

/** Adds `delta` VMs (+1 or -1) of OS `os`; entries that reach zero are removed. */
export function bump(counts: MutableHostOsCounts, os: OsIdentity, delta: number): void {
  let type = counts.byType.get(os.type);
  if (type === undefined) counts.byType.set(os.type, (type = { total: 0, byVersion: new Map() }));
  const n = (type.byVersion.get(os.version) ?? 0) + delta;
  if (n > 0) type.byVersion.set(os.version, n);
  else type.byVersion.delete(os.version);
  type.total += delta;
  if (type.total <= 0) counts.byType.delete(os.type);
  counts.vmCount += delta;
}

export function countOs(oses: Iterable<OsIdentity>): HostOsCounts {
  const counts = emptyCounts();
  for (const os of oses) bump(counts, os, +1);
  return counts;
}

/**
 * A copy of `counts` with one VM of OS `os` added (+1) or taken away (-1);
 * `counts` itself is left as it is (snapshots share it). Taking away an OS the
 * host does not have changes nothing.
 */
export function withVm(counts: HostOsCounts, os: OsIdentity, delta: 1 | -1): HostOsCounts {
  const type = counts.byType.get(os.type);
  if (delta < 0 && (type?.byVersion.get(os.version) ?? 0) === 0) return counts;
  const byType = new Map(counts.byType as MutableHostOsCounts['byType']);
  if (type !== undefined) byType.set(os.type, { total: type.total, byVersion: new Map(type.byVersion) });
  const copy: MutableHostOsCounts = { vmCount: counts.vmCount, byType };
  bump(copy, os, delta);
  return copy;
}
