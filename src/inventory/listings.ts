/**
 * What a snapshot holds, as lists for people and scripts: the OS identities
 * with their counts, the hosts with their cluster and status, the VMs. Pure
 * functions of an immutable snapshot; nothing here reads the engine.
 */
import type { OsIdentity } from '../ovirt/model';
import type { InventorySnapshot } from './snapshot';
import type { VmIndex } from './vm-index';

export interface OsUsage {
  readonly os: OsIdentity;
  /** VMs with this identity, running or not. */
  readonly vmCount: number;
  /** Of those, running on a host: the ones scores count. */
  readonly runningVmCount: number;
  /** Hosts running at least one of them. */
  readonly hostCount: number;
}

export interface HostListing {
  readonly id: string;
  readonly name: string;
  readonly clusterId: string | undefined;
  /** undefined: the engine did not list the host's cluster. */
  readonly clusterName: string | undefined;
  readonly status: string;
  readonly vmCount: number;
  /** The cluster's ksm.enabled; false when the cluster is not known. */
  readonly ksmEnabled: boolean;
  /** The host's own ksm.enabled (KSM runs there now); undefined when the engine did not say. */
  readonly hostKsmEnabled: boolean | undefined;
}

export interface VmListing {
  readonly id: string;
  readonly hostId: string | undefined;
  readonly os: OsIdentity;
}

/** Every VM is walked once per VM index (a new one comes with each change), not once per call. */
const osUsageByIndex = new WeakMap<VmIndex, readonly OsUsage[]>();

/** Every OS identity of the snapshot's VMs, by type, then version. */
export function operatingSystems(snapshot: InventorySnapshot): readonly OsUsage[] {
  const known = osUsageByIndex.get(snapshot.vms);
  if (known !== undefined) return known;
  interface Tally {
    readonly os: OsIdentity;
    vms: number;
    running: number;
    readonly hosts: Set<string>;
  }
  const byIdentity = new Map<string, Map<string, Tally>>();
  // Placements share OS objects, so most VMs are tallied with one lookup by object.
  const byObject = new Map<OsIdentity, Tally>();
  const tallyOf = (os: OsIdentity): Tally => {
    let versions = byIdentity.get(os.type);
    if (versions === undefined) byIdentity.set(os.type, (versions = new Map<string, Tally>()));
    let tally = versions.get(os.version);
    if (tally === undefined)
      versions.set(os.version, (tally = { os: { type: os.type, version: os.version }, vms: 0, running: 0, hosts: new Set() }));
    byObject.set(os, tally);
    return tally;
  };
  for (const [, placement] of snapshot.vms.entries()) {
    const tally = byObject.get(placement.os) ?? tallyOf(placement.os);
    tally.vms++;
    // Running as scores count it: on a host of the snapshot (a VM on a host the engine did not list counts toward none).
    if (placement.hostId !== undefined && snapshot.hosts.has(placement.hostId)) {
      tally.running++;
      tally.hosts.add(placement.hostId);
    }
  }
  const list = [...byIdentity.values()]
    .flatMap((versions) => [...versions.values()])
    .map((t): OsUsage => ({ os: t.os, vmCount: t.vms, runningVmCount: t.running, hostCount: t.hosts.size }))
    .sort((a, b) => compare(a.os.type, b.os.type) || compare(a.os.version, b.os.version));
  osUsageByIndex.set(snapshot.vms, list);
  return list;
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Every host of the snapshot, in the engine's order. */
export function hostListing(snapshot: InventorySnapshot): HostListing[] {
  return snapshot.hostIds.map((id): HostListing => {
    const details = snapshot.hostDetails.get(id);
    const cluster = details?.clusterId === undefined ? undefined : snapshot.clusters.get(details.clusterId);
    return {
      id,
      name: details?.name ?? '',
      clusterId: details?.clusterId,
      clusterName: cluster?.name,
      status: details?.status ?? '',
      vmCount: snapshot.hosts.get(id)?.vmCount ?? 0,
      ksmEnabled: cluster?.ksmEnabled ?? false,
      hostKsmEnabled: details?.ksmEnabled,
    };
  });
}

/**
 * The first `max` VMs, all or those running on `hostId`, and how many there
 * are in all; undefined when the snapshot has no such host.
 */
export function vmListing(
  snapshot: InventorySnapshot,
  hostId: string | undefined,
  max: number,
): { vms: VmListing[]; total: number } | undefined {
  const total = hostId === undefined ? snapshot.vmCount : snapshot.hosts.get(hostId)?.vmCount;
  if (total === undefined) return undefined;
  const vms: VmListing[] = [];
  if (max === 0 || total === 0) return { vms, total };
  for (const [id, placement] of snapshot.vms.entries()) {
    if (hostId !== undefined && placement.hostId !== hostId) continue;
    vms.push({ id, hostId: placement.hostId, os: placement.os });
    if (vms.length >= max) break;
  }
  return { vms, total };
}
