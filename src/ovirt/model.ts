/** What the service keeps of the engine's objects, after parsing. */

/** A VM's OS identity: two VMs share pages best when both parts are equal. */
export interface OsIdentity {
  readonly type: string;
  readonly version: string;
}

export interface EngineHost {
  readonly id: string;
  readonly name: string;
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
