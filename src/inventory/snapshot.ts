/**
 * One generation of the inventory, immutable: every host the engine listed
 * with its per-OS counts, and every VM's placement. A call keeps the snapshot
 * it started with, so neither a full refresh nor an event update changes data
 * under it: both build a new snapshot (SnapshotBuilder, applyChanges).
 */
import type { EngineCluster, EngineHost, EngineVm, OsIdentity } from '../ovirt/model';
import { HostOsCounts, type HostOsCountsBuilder, OsNumbering } from '../scoring/os-counts';
import type { RecordRejections } from '../ovirt/rejections';
import { VmIndex, type VmPlacement } from './vm-index';
import { VmTable } from './vm-table';

export type { VmPlacement } from './vm-index';

/** Hosts taken between two yields to the event loop while a refresh starts its snapshot. */
const HOSTS_PER_SLICE = 500;

export interface InventorySnapshot {
  /** Bumped whenever the data changes. */
  readonly generation: number;
  /** Epoch ms of the engine read that last confirmed this data (full refresh or events poll). */
  readonly refreshedAt: number;
  readonly hostCount: number;
  readonly vmCount: number;
  /** Every host id the engine listed, in the engine's order, once each. */
  readonly hostIds: readonly string[];
  /** Per-host OS counts of every host in hostIds. */
  readonly hosts: ReadonlyMap<string, HostOsCounts>;
  /** What the engine said of every host in hostIds (name, cluster, status), for listings. */
  readonly hostDetails: ReadonlyMap<string, EngineHost>;
  /** The clusters the engine listed at the last full refresh. */
  readonly clusters: ReadonlyMap<string, EngineCluster>;
  readonly vms: VmIndex;
}

/**
 * Builds a snapshot page by page as a full refresh reads the engine, so no
 * single step walks the whole inventory and the event loop stays free.
 */
export class SnapshotBuilder {
  private readonly hostIds: string[] = [];
  /** Host id -> its number in hostIds. */
  private readonly hostNumbers = new Map<string, number>();
  /**
   * Hosts that VMs name but the host list lacks (added or removed between the
   * two reads, or hidden from this account), with how many VMs name each. Such
   * VMs keep their host id but count toward no host: a call naming the host
   * reads it from the engine, as for any host the snapshot does not hold.
   */
  readonly unlistedHosts = new Map<string, number>();
  /** The OSes of the VMs so far, numbered as the counts and the VM table keep them. */
  private readonly oses = new OsNumbering();
  /**
   * Every host's counts, filled as VMs arrive (in place: build() has nothing left to do), and what
   * fills them; made when the first VMs come, once the host list is whole.
   */
  private counting: { readonly hosts: ReadonlyMap<string, HostOsCounts>; readonly builder: HostOsCountsBuilder } | undefined;
  private built = false;
  /** The VMs in flat arrays: a few objects for the collector to see, however many VMs (vm-table.ts). */
  private readonly vms: VmTable;
  private readonly hostDetails = new Map<string, EngineHost>();
  private readonly clusters: ReadonlyMap<string, EngineCluster>;

  /** `rejections`: where records listed twice are counted; `expectedVms`: the last refresh's count, so the VM table never regrows. */
  constructor(
    hosts: readonly EngineHost[],
    clusters: readonly EngineCluster[],
    private readonly rejections?: RecordRejections,
    expectedVms = 0,
  ) {
    this.vms = new VmTable(Math.max(1_024, Math.ceil(expectedVms * 1.1)));
    this.addHosts(hosts);
    const byId = new Map<string, EngineCluster>();
    for (const c of clusters) {
      if (byId.has(c.id)) rejections?.reject('cluster', 'duplicate', c.id, `engine listed cluster ${c.id} twice`);
      byId.set(c.id, c);
    }
    this.clusters = byId;
  }

  /**
   * The same, taking the hosts a slice at a time with a yield to the event loop between slices:
   * 5,000 hosts in one go held it for 3 ms (14 ms the first time), at the start of every refresh.
   */
  static async start(
    hosts: readonly EngineHost[],
    clusters: readonly EngineCluster[],
    rejections?: RecordRejections,
    expectedVms = 0,
  ): Promise<SnapshotBuilder> {
    const builder = new SnapshotBuilder([], clusters, rejections, expectedVms);
    for (let at = 0; at < hosts.length; at += HOSTS_PER_SLICE) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      builder.addHosts(hosts.slice(at, at + HOSTS_PER_SLICE));
    }
    return builder;
  }

  private addHosts(hosts: readonly EngineHost[]): void {
    for (const h of hosts) {
      // Listed twice: used once, in its first place, as it was listed last (as VMs and clusters are).
      if (this.hostNumbers.has(h.id)) this.rejections?.reject('host', 'duplicate', h.id, `engine listed host ${h.id} twice`);
      else this.hostNumbers.set(h.id, this.hostIds.push(h.id) - 1);
      this.hostDetails.set(h.id, h);
    }
  }

  private counted(): { readonly hosts: ReadonlyMap<string, HostOsCounts>; readonly builder: HostOsCountsBuilder } {
    if (this.counting !== undefined) return this.counting;
    const { counts, builder } = HostOsCounts.toFill(this.hostIds.length, this.oses.oses);
    return (this.counting = { hosts: new Map(this.hostIds.map((id, i) => [id, counts[i]!])), builder });
  }

  addVms(vms: readonly EngineVm[]): void {
    // The counts are the snapshot's own: once it is built they must not change.
    if (this.built) throw new Error('SnapshotBuilder: VMs added after build()');
    const counts = this.counted().builder;
    for (const vm of vms) {
      // Pages are not a snapshot: a VM seen twice counts where it was seen last.
      const os = this.oses.numberOf(vm.os);
      const previous = this.vms.set(vm.id, vm.hostId, this.oses.oses[os]!);
      if (previous !== undefined) {
        this.rejections?.reject('vm', 'duplicate', vm.id, `engine listed vm ${vm.id} twice`);
        this.count(counts, previous.hostId, this.oses.numberOf(previous.os), -1);
      }
      this.count(counts, vm.hostId, os, +1);
    }
  }

  private count(counts: HostOsCountsBuilder, hostId: string | undefined, os: number, delta: 1 | -1): void {
    if (hostId === undefined) return;
    const host = this.hostNumbers.get(hostId);
    if (host !== undefined) return counts.add(host, os, delta);
    const n = (this.unlistedHosts.get(hostId) ?? 0) + delta;
    if (n === 0) this.unlistedHosts.delete(hostId);
    else this.unlistedHosts.set(hostId, n);
  }

  build(args: { generation: number; refreshedAt: number }): InventorySnapshot {
    const { hosts } = this.counted();
    this.built = true;
    return Object.freeze({
      generation: args.generation,
      refreshedAt: args.refreshedAt,
      hostCount: this.hostIds.length,
      vmCount: this.vms.size,
      hostIds: Object.freeze(this.hostIds),
      hosts,
      hostDetails: this.hostDetails,
      clusters: this.clusters,
      vms: VmIndex.of(this.vms),
    });
  }
}

/** What an events poll learnt: VMs and hosts re-read from the engine (null: gone). */
export interface InventoryChanges {
  readonly vms: ReadonlyMap<string, EngineVm | null>;
  readonly hosts: ReadonlyMap<string, { host: EngineHost; vms: readonly EngineVm[] } | null>;
}

/** A new snapshot with `changes` applied; `snapshot` itself is left as it was. */
export function applyChanges(snapshot: InventorySnapshot, changes: InventoryChanges, refreshedAt: number): InventorySnapshot {
  const hosts = new Map(snapshot.hosts);
  const hostIds = [...snapshot.hostIds];
  const hostDetails = new Map(snapshot.hostDetails);

  for (const [id, change] of changes.hosts) {
    if (change === null) {
      if (hosts.delete(id)) hostIds.splice(hostIds.indexOf(id), 1);
      hostDetails.delete(id);
    } else {
      if (!hosts.has(id)) hostIds.push(id);
      hosts.set(id, HostOsCounts.of(change.vms.map((vm) => vm.os)));
      hostDetails.set(id, change.host);
    }
  }

  const vmUpdates = new Map<string, VmPlacement | null>();
  const move = (hostId: string | undefined, os: OsIdentity, delta: 1 | -1) => {
    // A host re-read above already counts its VMs as the engine has them now.
    if (hostId === undefined || changes.hosts.has(hostId)) return;
    const counts = hosts.get(hostId);
    if (counts !== undefined) hosts.set(hostId, counts.withVm(os, delta));
  };
  for (const [id, vm] of changes.vms) {
    const before = snapshot.vms.get(id);
    // As in a full refresh: a VM on a host the inventory lacks keeps its host id and counts toward no host.
    const after: VmPlacement | null = vm === null ? null : { hostId: vm.hostId, os: vm.os };
    vmUpdates.set(id, after);
    if (before !== undefined) move(before.hostId, before.os, -1);
    if (after !== null) move(after.hostId, after.os, +1);
  }

  const vms = snapshot.vms.with(vmUpdates);
  return Object.freeze({
    generation: snapshot.generation + 1,
    refreshedAt,
    hostCount: hostIds.length,
    vmCount: vms.size,
    hostIds: Object.freeze(hostIds),
    hosts,
    hostDetails,
    clusters: snapshot.clusters,
    vms,
  });
}
