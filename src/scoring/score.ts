/**
 * The scoring rule, as pure functions over immutable data: no I/O, no clock.
 *
 * Each VM counted on a host contributes 100 when its OS type and version both
 * equal the scored OS, 20 when only the type does, 0 otherwise; the host's
 * score is the mean over those VMs (0 for a host with none). The scored VM
 * itself is not counted on its own host, so a migrating VM does not attract
 * itself.
 */
import type { HostOsCounts } from './os-counts';
import type { OsIdentity } from '../ovirt/model';

export const SAME_VERSION_POINTS = 100;
export const SAME_TYPE_POINTS = 20;

export interface Candidate {
  readonly hostId: string;
  /** undefined: the engine has no such host. */
  readonly counts: HostOsCounts | undefined;
  /** The scored VM is among `counts` and must not count towards its own host. */
  readonly containsScoredVm: boolean;
}

export interface HostScore {
  readonly host_id: string;
  readonly score: number;
  readonly vm_count: number;
  readonly same_type_count: number;
  readonly same_version_count: number;
  readonly found: boolean;
}

export function scoreHost(candidate: Candidate, os: OsIdentity): HostScore {
  const { hostId, counts } = candidate;
  if (counts === undefined) {
    return { host_id: hostId, score: 0, vm_count: 0, same_type_count: 0, same_version_count: 0, found: false };
  }
  let vmCount = counts.vmCount;
  let sameTypeCount = counts.typeCount(os.type);
  let sameVersionCount = counts.osCount(os);
  if (candidate.containsScoredVm && sameVersionCount > 0) {
    // The scored VM has the scored OS, so it sits in all three counts.
    vmCount--;
    sameTypeCount--;
    sameVersionCount--;
  }
  const score =
    vmCount === 0 ? 0 : (SAME_VERSION_POINTS * sameVersionCount + SAME_TYPE_POINTS * (sameTypeCount - sameVersionCount)) / vmCount;
  return { host_id: hostId, score, vm_count: vmCount, same_type_count: sameTypeCount, same_version_count: sameVersionCount, found: true };
}

/**
 * The ranking, best first: score descending, then host id ascending, so
 * equal scores have a stable order (a total order). Negative: host a ranks before host b.
 */
export function compareRank(aScore: number, aId: string, bScore: number, bId: string): number {
  return bScore - aScore || (aId < bId ? -1 : aId > bId ? 1 : 0);
}

const byRank = (a: HostScore, b: HostScore): number => compareRank(a.score, a.host_id, b.score, b.host_id);

/**
 * The own-host rule: of the snapshot's hosts, the scored VM is counted on the
 * one where the snapshot places it (`placed`: its placement in the snapshot,
 * not one read on demand), so that host is scored without it; undefined: none
 * counts it. A host read on demand counts the VMs it was read with.
 */
export const ownHostOf = (placed: { readonly hostId: string | undefined } | undefined): string | undefined => placed?.hostId;

/**
 * Scores candidates in the order given; `rank` sorts them best first
 * (used when the caller named no hosts and gets the whole inventory).
 */
export function scoreCandidates(candidates: readonly Candidate[], os: OsIdentity, rank: boolean): HostScore[] {
  const scores = candidates.map((c) => scoreHost(c, os));
  return rank ? scores.sort(byRank) : scores;
}
