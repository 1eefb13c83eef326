/**
 * The data one call scores against: its snapshot, plus whatever hosts and VMs
 * the call needed that the snapshot's cache did not hold, fetched before
 * scoring starts. Every item of a batch reads the same view.
 */
import type { Candidate } from '../scoring/score';
import type { HostEntry, InventorySnapshot, VmPlacement } from './snapshot';

/** Thrown by a view reading the cache directly when a host is not there: the call must fetch it (resolve()). */
export class CacheMiss extends Error {
  override readonly name = 'CacheMiss';
}
const CACHE_MISS = new CacheMiss('host not in the cache');

export class CallView {
  /**
   * `hosts` undefined: every host the call needs was in the snapshot's cache,
   * and the call is scored in the same synchronous run that checked it, so it
   * reads the cache directly (nothing can evict in between).
   */
  constructor(
    readonly snapshot: InventorySnapshot,
    private readonly hosts: ReadonlyMap<string, HostEntry> | undefined,
    private readonly vms: ReadonlyMap<string, VmPlacement | undefined>,
  ) {}

  vm(id: string): VmPlacement | undefined {
    return this.vms.get(id);
  }

  /** `hostIds` undefined: every host of the snapshot. */
  candidates(hostIds: readonly string[] | undefined, scoredVmId: string | undefined): Candidate[] {
    const cache = this.snapshot.hosts;
    return (hostIds ?? this.snapshot.hostIds).map((hostId) => {
      const entry = this.hosts === undefined ? cache.get(hostId) : this.hosts.get(hostId);
      if (entry === undefined && this.hosts === undefined) throw CACHE_MISS;
      if (entry === undefined || !entry.found) return { hostId, counts: undefined, containsScoredVm: false };
      return { hostId, counts: entry.counts, containsScoredVm: scoredVmId !== undefined && this.contains(hostId, entry, scoredVmId) };
    });
  }

  /** Whether the data the host's counts were built from has the VM on that host. */
  private contains(hostId: string, entry: HostEntry & { found: true }, vmId: string): boolean {
    return entry.vmIds !== undefined ? entry.vmIds.has(vmId) : this.snapshot.vms.get(vmId)?.hostId === hostId;
  }
}
