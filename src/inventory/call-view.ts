/**
 * The data one call scores against: its snapshot, plus whatever hosts and
 * VMs the snapshot did not hold and were read on demand. Every item of a
 * batch reads the same view; nothing in it changes while the call runs.
 */
import type { HostOsCounts } from '../scoring/os-counts';
import { type Candidate, ownHostOf } from '../scoring/score';
import type { ScoringView } from '../scoring/view';
import type { InventorySnapshot, VmPlacement } from './snapshot';

/** A host the snapshot did not list, as read on demand: its counts and the VMs they were built from. */
export interface OnDemandHost {
  readonly counts: HostOsCounts;
  readonly vmIds: ReadonlySet<string>;
}

export class CallView implements ScoringView {
  constructor(
    readonly snapshot: InventorySnapshot,
    /** Hosts read on demand; an id mapped to undefined: the engine has no such host. */
    private readonly extraHosts: ReadonlyMap<string, OnDemandHost | undefined> | undefined,
    private readonly extraVms: ReadonlyMap<string, VmPlacement | undefined> | undefined,
  ) {}

  /** Where the VM runs and what it runs; undefined: the engine has no such VM. */
  vm(id: string): VmPlacement | undefined {
    return this.snapshot.vms.get(id) ?? this.extraVms?.get(id);
  }

  /** `hostIds` undefined: every host of the snapshot. */
  candidates(hostIds: readonly string[] | undefined, scoredVmId: string | undefined): Candidate[] {
    const { hosts, vms } = this.snapshot;
    const scoredOn = scoredVmId === undefined ? undefined : ownHostOf(vms.get(scoredVmId));
    return (hostIds ?? this.snapshot.hostIds).map((hostId): Candidate => {
      const counts = hosts.get(hostId);
      if (counts !== undefined) return { hostId, counts, containsScoredVm: scoredOn === hostId };
      const extra = this.extraHosts?.get(hostId);
      if (extra === undefined) return { hostId, counts: undefined, containsScoredVm: false };
      return { hostId, counts: extra.counts, containsScoredVm: scoredVmId !== undefined && extra.vmIds.has(scoredVmId) };
    });
  }
}
