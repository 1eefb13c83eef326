/**
 * One generation of the inventory. A snapshot is never changed once built,
 * except for on-demand additions to its host cache (hosts it did not hold).
 * A call keeps the snapshot it started with, so neither a full refresh nor
 * an event update changes data under it: both build a new snapshot.
 */
import { LRUCache } from 'lru-cache';
import { ScorerError } from '../errors';
import type { EngineHost, EngineVm, OsIdentity } from '../ovirt/model';
import { adjustCounts, countOs, EMPTY_HOST, type HostOsCounts } from './host-os-counts';
import { VmIndex, type VmPlacement } from './vm-index';

export type { VmPlacement } from './vm-index';

/** What the cache holds for a host id: its counts, or the fact that the engine has no such host. */
export type HostEntry =
  | {
      readonly found: true;
      readonly counts: HostOsCounts;
      /** Only for hosts fetched on demand: the VMs their counts were built from. */
      readonly vmIds?: ReadonlySet<string>;
    }
  | { readonly found: false };

export interface InventorySnapshot {
  /** Bumped whenever the data changes. */
  readonly generation: number;
  /** Epoch ms of the engine read that last confirmed this data (full refresh or events poll). */
  readonly refreshedAt: number;
  readonly hostCount: number;
  readonly vmCount: number;
  /** Every host id the engine listed, in the engine's order. */
  readonly hostIds: readonly string[];
  /** Per-host OS counts, bounded; a miss is fetched on demand. */
  readonly hosts: LRUCache<string, HostEntry>;
  readonly vms: VmIndex;
}

/**
 * Builds a snapshot page by page as a full refresh reads the engine, so no
 * single step walks the whole inventory and the event loop stays free.
 */
export class SnapshotBuilder {
  private readonly hostIds: string[];
  private readonly known: Set<string>;
  /** type -> version -> the one OsIdentity object for it. */
  private readonly interned = new Map<string, Map<string, OsIdentity>>();
  /** One placement object per (host, OS): VMs share them, so the VM index costs one entry per VM. */
  private readonly sharedPlacements = new Map<string | undefined, Map<OsIdentity, VmPlacement>>();
  /** Built in their final shape as VMs arrive, so build() only wraps them. */
  private readonly counts = new Map<string, MutableHostOsCounts>();
  private readonly placements = new Map<string, VmPlacement>();

  constructor(hosts: readonly EngineHost[]) {
    this.hostIds = hosts.map((h) => h.id);
    this.known = new Set(this.hostIds);
  }

  addVms(vms: readonly EngineVm[]): void {
    for (const vm of vms) {
      if (vm.hostId !== undefined && !this.known.has(vm.hostId)) {
        throw new ScorerError('engine_protocol', `engine listed vm ${vm.id} on host ${vm.hostId}, which is not in its host list`);
      }
      // Pages are not a snapshot: a VM seen twice counts where it was seen last.
      const previous = this.placements.get(vm.id);
      if (previous?.hostId !== undefined) this.count(previous.hostId, previous.os, -1);
      const placement = this.placement(vm.hostId, this.intern(vm.os));
      this.placements.set(vm.id, placement);
      if (vm.hostId !== undefined) this.count(vm.hostId, placement.os, +1);
    }
  }

  build(args: { generation: number; refreshedAt: number; cacheMaxHosts: number }): InventorySnapshot {
    const cache = new LRUCache<string, HostEntry>({ max: args.cacheMaxHosts });
    for (const id of this.hostIds) cache.set(id, { found: true, counts: this.counts.get(id) ?? EMPTY_HOST });
    return Object.freeze({
      generation: args.generation,
      refreshedAt: args.refreshedAt,
      hostCount: this.hostIds.length,
      vmCount: this.placements.size,
      hostIds: Object.freeze(this.hostIds),
      hosts: cache,
      vms: VmIndex.of(this.placements),
    });
  }

  /**
   * Many VMs share few OS identities: one object each, so memory follows
   * distinct OSes, not VMs. Nested maps, not concatenated keys: a refresh
   * would otherwise make two temporary strings per VM.
   */
  private intern(os: OsIdentity): OsIdentity {
    let versions = this.interned.get(os.type);
    if (versions === undefined) this.interned.set(os.type, (versions = new Map()));
    let interned = versions.get(os.version);
    if (interned === undefined) versions.set(os.version, (interned = Object.freeze({ type: os.type, version: os.version })));
    return interned;
  }

  private placement(hostId: string | undefined, os: OsIdentity): VmPlacement {
    let byOs = this.sharedPlacements.get(hostId);
    if (byOs === undefined) this.sharedPlacements.set(hostId, (byOs = new Map()));
    let placement = byOs.get(os);
    if (placement === undefined) byOs.set(os, (placement = Object.freeze({ hostId, os })));
    return placement;
  }

  private count(hostId: string, os: OsIdentity, delta: number): void {
    let host = this.counts.get(hostId);
    if (host === undefined) this.counts.set(hostId, (host = { vmCount: 0, byType: new Map() }));
    let type = host.byType.get(os.type);
    if (type === undefined) host.byType.set(os.type, (type = { total: 0, byVersion: new Map() }));
    const n = (type.byVersion.get(os.version) ?? 0) + delta;
    if (n > 0) type.byVersion.set(os.version, n);
    else type.byVersion.delete(os.version);
    type.total += delta;
    if (type.total === 0) host.byType.delete(os.type);
    host.vmCount += delta;
  }
}

interface MutableHostOsCounts {
  vmCount: number;
  byType: Map<string, { total: number; byVersion: Map<string, number> }>;
}

/** What an events poll learnt: VMs and hosts re-read from the engine (null: gone). */
export interface InventoryChanges {
  readonly vms: ReadonlyMap<string, EngineVm | null>;
  readonly hosts: ReadonlyMap<string, { host: EngineHost; vms: readonly EngineVm[] } | null>;
}

/** A new snapshot with `changes` applied; `snapshot` itself is left as it was. */
export function applyChanges(snapshot: InventorySnapshot, changes: InventoryChanges, refreshedAt: number): InventorySnapshot {
  const entries = new Map<string, HostEntry>();
  for (const id of snapshot.hosts.rkeys()) entries.set(id, snapshot.hosts.peek(id)!); // oldest first, keeps LRU order
  const hostIds = [...snapshot.hostIds];
  const known = new Set(hostIds);

  for (const [id, change] of changes.hosts) {
    if (change === null) {
      entries.set(id, { found: false });
      if (known.delete(id)) hostIds.splice(hostIds.indexOf(id), 1);
    } else {
      if (!known.has(id)) {
        known.add(id);
        hostIds.push(id);
      }
      entries.set(id, { found: true, counts: countOs(change.vms.map((vm) => vm.os)) });
    }
  }

  const vmUpdates = new Map<string, VmPlacement | null>();
  for (const [id, vm] of changes.vms) {
    const before = snapshot.vms.get(id);
    const hostId = vm?.hostId !== undefined && known.has(vm.hostId) ? vm.hostId : undefined;
    const after: VmPlacement | null = vm === null ? null : { hostId, os: vm.os };
    vmUpdates.set(id, after);
    if (before?.hostId !== undefined && !changes.hosts.has(before.hostId)) moveOut(entries, before.hostId, before.os);
    if (after?.hostId !== undefined && !changes.hosts.has(after.hostId)) moveIn(entries, after.hostId, after.os);
  }

  const cache = new LRUCache<string, HostEntry>({ max: snapshot.hosts.max });
  for (const [id, entry] of entries) cache.set(id, entry);
  const vms = snapshot.vms.with(vmUpdates);
  return Object.freeze({
    generation: snapshot.generation + 1,
    refreshedAt,
    hostCount: hostIds.length,
    vmCount: vms.size,
    hostIds: Object.freeze(hostIds),
    hosts: cache,
    vms,
  });
}

function moveOut(entries: Map<string, HostEntry>, hostId: string, os: OsIdentity): void {
  const entry = entries.get(hostId);
  if (entry === undefined || !entry.found) return;
  // A host fetched on demand knows its VMs by id; simpler to fetch it again than to patch it.
  if (entry.vmIds !== undefined) entries.delete(hostId);
  else entries.set(hostId, { found: true, counts: adjustCounts(entry.counts, os, undefined) });
}

function moveIn(entries: Map<string, HostEntry>, hostId: string, os: OsIdentity): void {
  const entry = entries.get(hostId);
  if (entry === undefined || !entry.found) return; // not cached: it will be fetched fresh on demand
  if (entry.vmIds !== undefined) entries.delete(hostId);
  else entries.set(hostId, { found: true, counts: adjustCounts(entry.counts, undefined, os) });
}
