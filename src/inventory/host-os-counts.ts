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
