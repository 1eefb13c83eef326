/**
 * Per-host counts of VMs by OS identity. Scoring reads two numbers from it
 * (same type, same type and version) in O(1), so a host never costs a walk
 * over its VMs.
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

export const EMPTY_HOST: HostOsCounts = Object.freeze({ vmCount: 0, byType: new Map() });

export function countOs(oses: Iterable<OsIdentity>): HostOsCounts {
  const byType = new Map<string, { total: number; byVersion: Map<string, number> }>();
  let vmCount = 0;
  for (const { type, version } of oses) {
    vmCount++;
    let t = byType.get(type);
    if (t === undefined) byType.set(type, (t = { total: 0, byVersion: new Map() }));
    t.total++;
    t.byVersion.set(version, (t.byVersion.get(version) ?? 0) + 1);
  }
  return { vmCount, byType };
}

/** A copy of `counts` with one VM of OS `remove` taken away and/or one of OS `add` put in. */
export function adjustCounts(counts: HostOsCounts, remove: OsIdentity | undefined, add: OsIdentity | undefined): HostOsCounts {
  const byType = new Map(counts.byType);
  let vmCount = counts.vmCount;
  const change = (os: OsIdentity, delta: number) => {
    const t = byType.get(os.type);
    const byVersion = new Map(t?.byVersion);
    const n = (byVersion.get(os.version) ?? 0) + delta;
    if (n > 0) byVersion.set(os.version, n);
    else byVersion.delete(os.version);
    const total = (t?.total ?? 0) + delta;
    if (total > 0) byType.set(os.type, { total, byVersion });
    else byType.delete(os.type);
    vmCount += delta;
  };
  if (remove !== undefined && (counts.byType.get(remove.type)?.byVersion.get(remove.version) ?? 0) > 0) change(remove, -1);
  if (add !== undefined) change(add, +1);
  return { vmCount, byType };
}
