/**
 * What scoring needs of the inventory, declared here so scoring depends on
 * nothing above it: the snapshot a call is answered from, the view a call
 * scores on (the snapshot plus what was read on demand), and how to get
 * both. The inventory (src/inventory/) implements these as they are.
 */
import type { OsIdentity } from '../ovirt/model';
import type { HostOsCounts } from './os-counts';
import type { Candidate } from './score';

/** Where a VM runs and what it runs. */
export interface ScoredVm {
  readonly hostId: string | undefined;
  readonly os: OsIdentity;
}

/** One generation of the inventory, as scoring reads it; immutable. */
export interface ScoredSnapshot {
  readonly generation: number;
  readonly hostCount: number;
  /** Every host id, in the engine's order, once each. */
  readonly hostIds: readonly string[];
  /** Per-host OS counts of every host in hostIds. */
  readonly hosts: ReadonlyMap<string, HostOsCounts>;
  readonly vms: { get(id: string): ScoredVm | undefined };
}

/** The data one call scores against: its snapshot, plus the hosts and VMs it lacked, read on demand. */
export interface ScoringView {
  readonly snapshot: ScoredSnapshot;
  /** Where the VM runs and what it runs; undefined: the engine has no such VM. */
  vm(id: string): ScoredVm | undefined;
  /** `hostIds` undefined: every host of the snapshot; each counts `scoredVmId` or not as ownHostOf says. */
  candidates(hostIds: readonly string[] | undefined, scoredVmId: string | undefined): Candidate[];
}

/** What one call (or batch) will read. */
export interface CallNeeds {
  /** May repeat ids. */
  readonly hostIds: Iterable<string>;
  readonly vmIds: Iterable<string>;
}

/** The call's cancellation, opened only when the call has to wait for the engine. */
export type OpenCallSignal = () => { readonly signal: AbortSignal; dispose(): void };

/** Where calls get their snapshot and view from. */
export interface ServedSnapshots<S extends ScoredSnapshot> {
  /** The snapshot a call may be answered from; throws not_ready when there is none fit to serve. */
  servableSnapshot(): S;
  /**
   * Runs `use` on a view holding everything `needs` names: now, when the
   * snapshot holds it (no promise, no engine), else after reading what is
   * missing from the engine, waiting no longer than `openSignal`'s signal.
   */
  withView<T>(snapshot: S, needs: CallNeeds, openSignal: OpenCallSignal, use: (view: ScoringView) => T): T | Promise<T>;
}
