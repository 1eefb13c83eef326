/** What the service keeps of the engine's objects, after parsing. */

const UUID_LOWER = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID_ANY_CASE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The id (8-4-4-4-12 hex digits) in lower case, or undefined when it is not a UUID. Engine ids are lower case: one test. */
export function uuid(s: string): string | undefined {
  if (UUID_LOWER.test(s)) return s;
  return UUID_ANY_CASE.test(s) ? s.toLowerCase() : undefined;
}

/** Longest OS type or version kept, from the engine or a caller: osinfo names and versions are far shorter. */
export const MAX_OS_FIELD_LENGTH = 256;

/** A VM's OS identity: two VMs share pages best when both parts are equal. */
export interface OsIdentity {
  readonly type: string;
  readonly version: string;
}

export interface EngineHost {
  readonly id: string;
  readonly name: string;
  readonly clusterId: string | undefined;
  /** The engine's host status: "up", "maintenance", "non_responsive", ... ("" when absent). */
  readonly status: string;
  /**
   * The host's own ksm.enabled: whether KSM runs on it now (MOM turns it on
   * under memory pressure); undefined when the engine did not say. The
   * cluster's ksm.enabled says whether it may run at all.
   */
  readonly ksmEnabled?: boolean | undefined;
}

/** A cluster, as far as telling whether KSM runs on its hosts. */
export interface EngineCluster {
  readonly id: string;
  readonly name: string;
  /** Whether KSM may run on its hosts; undefined when the engine did not say (or said something odd). */
  readonly ksmEnabled: boolean | undefined;
}

export interface EngineVm {
  readonly id: string;
  /** The host it runs on; undefined when it is not running. */
  readonly hostId: string | undefined;
  readonly os: OsIdentity;
}

/** An audit-log event, as far as keeping the inventory fresh needs it. */
export interface EngineEvent {
  readonly id: number;
  readonly code: number;
  readonly vmId: string | undefined;
  readonly hostId: string | undefined;
}
