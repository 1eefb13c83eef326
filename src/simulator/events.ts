/** The simulated engine's audit log entries, as an engine keeps them and the service polls them. */

/** An audit-log entry, as the engine keeps them. */
export interface SimEvent {
  readonly id: number;
  readonly code: number;
  readonly time: number;
  readonly description: string;
  readonly vm?: { readonly id: string; readonly name: string };
  readonly host?: { readonly id: string; readonly name: string };
}

/** Event codes the simulator writes (the engine's AuditLogType numbers). */
export const EVENT = {
  USER_STARTED_VM: 153,
  USER_STOP_VM: 33,
  USER_SUSPEND_VM_OK: 503,
  VM_MIGRATION_DONE: 63,
  USER_UPDATE_VM: 35,
  USER_REMOVE_VM_FINISHED: 113,
  USER_ADD_VDS: 42,
  USER_REMOVE_VDS: 44,
  USER_ADD_VM: 34,
} as const;
