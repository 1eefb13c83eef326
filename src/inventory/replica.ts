/**
 * Copies of the inventory in other processes: each generation as a compact,
 * structured-clone-friendly message (a whole snapshot after a full refresh,
 * the engine changes after an events poll, a new time after a quiet poll),
 * and the pure step that turns the last snapshot and a message into the next.
 */
import type { EngineCluster, EngineHost, OsIdentity } from '../ovirt/model';
import { type EncodedHostOsCounts, HostOsCounts, OsNumbering } from '../scoring/os-counts';
import { applyChanges, type InventoryChanges, type InventorySnapshot } from './snapshot';
import type { SnapshotUpdate } from './generation-sink';
import { VmIndex, type VmPlacement } from './vm-index';
import { type EncodedVmTable, VmTable } from './vm-table';

/** VMs and their placements: ids once each, host and OS as indexes into the snapshot's tables. */
export interface EncodedVms {
  /** The ids joined by "\n": one string crosses to a worker in one copy, where 100,000 strings would take one each. */
  readonly ids: string;
  /** Index into EncodedSnapshot.hostIds, or NO_HOST for a VM that is not running. */
  readonly host: Uint32Array;
  /** Index into the OS table, or REMOVED (in the changes layer: the VM is gone). */
  readonly os: Uint32Array;
}

/**
 * A whole snapshot in a few arrays: strings once each (ids, OS names), every
 * relation as indexes in typed arrays. About 45 bytes a VM, most of it the id.
 * The VM index keeps its two layers (the last full refresh's, the changes
 * since), so the copy iterates in the same order and changes the same way.
 */
export interface EncodedSnapshot {
  readonly generation: number;
  readonly refreshedAt: number;
  /** Distinct OS identities: OS i is (osNames[2i], osNames[2i + 1]). */
  readonly osNames: readonly string[];
  /** The snapshot's hostIds, then any host id only a VM placement still names (a host removed by an event). */
  readonly hostIds: readonly string[];
  readonly hostCount: number;
  /** The counts of hosts 0 .. hostCount - 1, OSes numbered as in osNames: typed arrays, read where they arrive. */
  readonly counts: EncodedHostOsCounts;
  readonly hostDetails: EncodedHostDetails;
  readonly clusters: readonly EngineCluster[];
  /** The last full refresh's VMs: flat arrays, copied by the message and used as they arrive. */
  readonly vmBase: EncodedVmTable;
  readonly vmChanges: EncodedVms;
}

/**
 * What the engine said of each host (EngineHost), in hostIds order, as
 * columns: a worker deserialises 5,000 objects in about 2 ms, these columns
 * in a tenth of that. Repeated values (cluster ids, statuses) are sent once.
 */
export interface EncodedHostDetails {
  readonly names: readonly string[];
  /** Distinct cluster ids, and per host an index into them (NO_VALUE: none). */
  readonly clusterIds: readonly string[];
  readonly cluster: Uint32Array;
  readonly statuses: readonly string[];
  readonly status: Uint32Array;
  /** The host's ksm.enabled: KSM_FALSE, KSM_TRUE, KSM_UNSAID, or NO_DETAILS (the snapshot has none for the host). */
  readonly ksm: Uint8Array;
}

const NO_VALUE = 0xffff_ffff;
const [KSM_FALSE, KSM_TRUE, KSM_UNSAID, NO_DETAILS] = [0, 1, 2, 3];

function encodeHostDetails(hostIds: readonly string[], details: ReadonlyMap<string, EngineHost>): EncodedHostDetails {
  const numbering = () => {
    const values: string[] = [];
    const index = new Map<string, number>();
    const of = (value: string | undefined): number => {
      if (value === undefined) return NO_VALUE;
      let i = index.get(value);
      if (i === undefined) index.set(value, (i = values.push(value) - 1));
      return i;
    };
    return { values, of };
  };
  const clusters = numbering();
  const statuses = numbering();
  const e = {
    names: [] as string[],
    cluster: new Uint32Array(hostIds.length),
    status: new Uint32Array(hostIds.length),
    ksm: new Uint8Array(hostIds.length),
  };
  hostIds.forEach((id, i) => {
    const d = details.get(id);
    e.names.push(d?.name ?? '');
    e.cluster[i] = clusters.of(d?.clusterId);
    e.status[i] = statuses.of(d?.status);
    e.ksm[i] = d === undefined ? NO_DETAILS : d.ksmEnabled === undefined ? KSM_UNSAID : d.ksmEnabled ? KSM_TRUE : KSM_FALSE;
  });
  return { ...e, clusterIds: clusters.values, statuses: statuses.values };
}

function decodeHostDetail(e: EncodedHostDetails, id: string, i: number): EngineHost | undefined {
  const ksm = e.ksm[i]!;
  if (ksm === NO_DETAILS) return undefined;
  const cluster = e.cluster[i]!;
  return {
    id,
    name: e.names[i]!,
    clusterId: cluster === NO_VALUE ? undefined : e.clusterIds[cluster],
    status: e.statuses[e.status[i]!] ?? '',
    ksmEnabled: ksm === KSM_UNSAID ? undefined : ksm === KSM_TRUE,
  };
}

/**
 * One generation, as the primary sends it. `ageMs`: how long ago its data was read, on the
 * primary's clock that never jumps, so every process serves it equally fresh whatever the wall clock did.
 */
export type GenerationMessage = (
  | { readonly kind: 'full'; readonly snapshot: EncodedSnapshot }
  | { readonly kind: 'changes'; readonly generation: number; readonly refreshedAt: number; readonly changes: InventoryChanges }
  | { readonly kind: 'refreshed'; readonly generation: number; readonly refreshedAt: number }
) & { readonly ageMs?: number };

const NO_HOST = 0xffff_ffff;
const REMOVED = 0xffff_ffff;

/** The message that lets a replica holding the previous generation build `snapshot`. */
export function generationMessage(snapshot: InventorySnapshot, update: SnapshotUpdate, ageMs?: number): GenerationMessage {
  const { generation, refreshedAt } = snapshot;
  const age = ageMs === undefined ? {} : { ageMs };
  if (update.kind === 'changes') return { kind: 'changes', generation, refreshedAt, changes: update.changes, ...age };
  if (update.kind === 'refreshed') return { kind: 'refreshed', generation, refreshedAt, ...age };
  return { kind: 'full', snapshot: encodeSnapshot(snapshot), ...age };
}

/**
 * The snapshot `message` makes from `current`, or undefined when it does not
 * follow from it (a generation was missed): the replica then needs a full one.
 */
export function followGeneration(current: InventorySnapshot | undefined, message: GenerationMessage): InventorySnapshot | undefined {
  if (message.kind === 'full') return decodeSnapshot(message.snapshot);
  if (message.kind === 'refreshed') {
    return current?.generation === message.generation ? Object.freeze({ ...current, refreshedAt: message.refreshedAt }) : undefined;
  }
  // The same step as the primary's, from the same snapshot: the same generation, the same data.
  return current?.generation === message.generation - 1 ? applyChanges(current, message.changes, message.refreshedAt) : undefined;
}

export function encodeSnapshot(snapshot: InventorySnapshot): EncodedSnapshot {
  const numbering = new OsNumbering();
  const osOf = (os: OsIdentity): number => numbering.numberOf(os);

  const hostIds = [...snapshot.hostIds];
  const hostIndex = new Map(hostIds.map((id, i) => [id, i]));
  const hostOf = (id: string | undefined): number => {
    if (id === undefined) return NO_HOST;
    let i = hostIndex.get(id);
    if (i === undefined) hostIndex.set(id, (i = hostIds.push(id) - 1));
    return i;
  };

  const counts = HostOsCounts.encode(
    snapshot.hostIds.map((id) => snapshot.hosts.get(id)!),
    osOf,
  );

  const encodeVms = (layer: ReadonlyMap<string, VmPlacement | null>): EncodedVms => {
    const host = new Uint32Array(layer.size);
    const os = new Uint32Array(layer.size);
    let i = 0;
    for (const placement of layer.values()) {
      host[i] = placement === null ? NO_HOST : hostOf(placement.hostId);
      os[i++] = placement === null ? REMOVED : osOf(placement.os);
    }
    return { ids: [...layer.keys()].join('\n'), host, os };
  };
  const { base, changes } = snapshot.vms.layers();
  // Before osNames: the changed VMs may number OSes of their own.
  const vmChanges = encodeVms(changes);

  return {
    generation: snapshot.generation,
    refreshedAt: snapshot.refreshedAt,
    osNames: numbering.oses.flatMap((os) => [os.type, os.version]),
    hostCount: snapshot.hostIds.length,
    counts,
    hostDetails: encodeHostDetails(snapshot.hostIds, snapshot.hostDetails),
    clusters: [...snapshot.clusters.values()],
    vmBase: base.encode(),
    vmChanges,
    hostIds, // with the ids the VM layers added
  };
}

/** VMs, and hosts' counts, a replica rebuilds between two yields to its event loop: about a millisecond of work each. */
const VMS_PER_SLICE = 2_000;
const HOSTS_PER_SLICE = 1_000;

/** Rebuilds the snapshot in one go (tests, small inventories). */
export function decodeSnapshot(e: EncodedSnapshot): InventorySnapshot {
  const steps = decodeSteps(e);
  for (let step = steps.next(); ; step = steps.next()) if (step.done) return step.value;
}

/**
 * Rebuilds the snapshot a slice at a time, yielding to the event loop between
 * slices, so a worker applying a generation of 100,000 VMs goes on answering
 * calls (from the generation it has) meanwhile.
 */
export async function decodeSnapshotInSlices(e: EncodedSnapshot): Promise<InventorySnapshot> {
  const steps = decodeSteps(e);
  for (let step = steps.next(); ; step = steps.next()) {
    if (step.done) return step.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** The rebuild, sharing objects as SnapshotBuilder does (one per OS, one placement per (host, OS)); yields after each slice. */
function* decodeSteps(e: EncodedSnapshot): Generator<void, InventorySnapshot> {
  const oses: OsIdentity[] = [];
  for (let i = 0; i < e.osNames.length; i += 2) oses.push(Object.freeze({ type: e.osNames[i]!, version: e.osNames[i + 1]! }));

  const hostIds = e.hostIds.slice(0, e.hostCount);
  // The counts are read where they arrived, in the message's arrays: a small object per host, no copy.
  const counts = HostOsCounts.decode(e.counts, oses);
  const hosts = new Map<string, HostOsCounts>();
  for (let i = 0; i < hostIds.length; i++) {
    hosts.set(hostIds[i]!, counts[i]!);
    if ((i + 1) % HOSTS_PER_SLICE === 0) yield;
  }
  yield;
  const hostDetails = new Map<string, EngineHost>();
  for (let i = 0; i < hostIds.length; i++) {
    const details = decodeHostDetail(e.hostDetails, hostIds[i]!, i);
    if (details !== undefined) hostDetails.set(hostIds[i]!, details);
    if ((i + 1) % HOSTS_PER_SLICE === 0) yield;
  }

  const shared = new Map<number, VmPlacement>();
  const placement = (host: number, os: number): VmPlacement => {
    const key = (host === NO_HOST ? e.hostIds.length : host) * oses.length + os;
    let p = shared.get(key);
    if (p === undefined) shared.set(key, (p = Object.freeze({ hostId: host === NO_HOST ? undefined : e.hostIds[host], os: oses[os]! })));
    return p;
  };
  const base = VmTable.decode(e.vmBase);
  const changes = new Map<string, VmPlacement | null>();
  yield* eachVm(e.vmChanges, (id, host, os) => changes.set(id, os === REMOVED ? null : placement(host, os)));
  const vms = VmIndex.of(base, changes);

  return Object.freeze({
    generation: e.generation,
    refreshedAt: e.refreshedAt,
    hostCount: hostIds.length,
    vmCount: vms.size,
    hostIds: Object.freeze(hostIds),
    hosts,
    hostDetails,
    clusters: new Map(e.clusters.map((c) => [c.id, c])),
    vms,
  });
}

function* eachVm(vms: EncodedVms, use: (id: string, host: number, os: number) => void): Generator<void, void> {
  const { ids } = vms;
  if (ids === '') return;
  for (let i = 0, at = 0; at <= ids.length; i++) {
    let end = ids.indexOf('\n', at);
    if (end < 0) end = ids.length;
    use(ids.slice(at, end), vms.host[i]!, vms.os[i]!);
    at = end + 1;
    if ((i + 1) % VMS_PER_SLICE === 0) yield;
  }
}
