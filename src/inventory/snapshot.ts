/**
 * One generation of the inventory, built from one full read of the engine and
 * never changed afterwards except for on-demand additions to its host cache
 * (hosts it did not hold). A call keeps the snapshot it started with, so a
 * refresh never changes data under it.
 */
import { LRUCache } from 'lru-cache';
import { ScorerError } from '../errors';
import type { EngineHost, EngineVm, OsIdentity } from '../ovirt/model';
import { countOs, type HostOsCounts } from './host-os-counts';

/** What the cache holds for a host id: its counts, or the fact that the engine has no such host. */
export type HostEntry =
  | { readonly found: true; readonly counts: HostOsCounts; readonly vmIds?: ReadonlySet<string> }
  | { readonly found: false };

/** Where a VM runs and what it runs, as read at the snapshot's refresh. */
export interface VmPlacement {
  readonly hostId: string | undefined;
  readonly os: OsIdentity;
}

export interface InventorySnapshot {
  readonly generation: number;
  /** Epoch ms when the data was read from the engine. */
  readonly refreshedAt: number;
  readonly hostCount: number;
  readonly vmCount: number;
  /** Every host id the engine listed, in the engine's order. */
  readonly hostIds: readonly string[];
  /** Per-host OS counts, bounded; a miss is fetched on demand. */
  readonly hosts: LRUCache<string, HostEntry>;
  readonly vms: ReadonlyMap<string, VmPlacement>;
}

export function buildSnapshot(args: {
  generation: number;
  refreshedAt: number;
  hosts: readonly EngineHost[];
  vms: readonly EngineVm[];
  cacheMaxHosts: number;
}): InventorySnapshot {
  const { hosts, vms } = args;
  const hostIds = hosts.map((h) => h.id);
  const known = new Set(hostIds);
  // Many VMs share few OS identities: intern them so memory follows distinct OSes, not VMs.
  const interned = new Map<string, OsIdentity>();
  const osOnHost = new Map<string, OsIdentity[]>();
  const placements = new Map<string, VmPlacement>();
  for (const vm of vms) {
    const key = `${vm.os.type}\u0000${vm.os.version}`;
    let os = interned.get(key);
    if (os === undefined) interned.set(key, (os = Object.freeze({ type: vm.os.type, version: vm.os.version })));
    if (vm.hostId !== undefined) {
      if (!known.has(vm.hostId)) {
        throw new ScorerError('engine_protocol', `engine listed vm ${vm.id} on host ${vm.hostId}, which is not in its host list`);
      }
      let list = osOnHost.get(vm.hostId);
      if (list === undefined) osOnHost.set(vm.hostId, (list = []));
      list.push(os);
    }
    placements.set(vm.id, Object.freeze({ hostId: vm.hostId, os }));
  }
  const cache = new LRUCache<string, HostEntry>({ max: args.cacheMaxHosts });
  for (const id of hostIds) cache.set(id, { found: true, counts: countOs(osOnHost.get(id) ?? []) });
  return Object.freeze({
    generation: args.generation,
    refreshedAt: args.refreshedAt,
    hostCount: hostIds.length,
    vmCount: placements.size,
    hostIds: Object.freeze(hostIds),
    hosts: cache,
    vms: placements,
  });
}
