/**
 * Which engine events change what the inventory holds (codes from the engine's
 * AuditLogType; see shared/reference/ovirt.md section 2), and what to re-read
 * for them. Pure: the inventory does the reading.
 */
import type { EngineEvent } from '../ovirt/model';

/** Events that start, stop, suspend, move, change the OS of, or remove a VM. */
export const VM_EVENT_CODES: ReadonlySet<number> = new Set([
  32, // USER_RUN_VM
  153, // USER_STARTED_VM
  150, // USER_INITIATED_RUN_VM
  152, // USER_INITIATED_RUN_VM_FAILED
  506, // VDS_INITIATED_RUN_VM
  538, // VDS_INITIATED_RUN_VM_AS_STATELESS
  61, // VM_DOWN
  119, // VM_DOWN_ERROR
  33, // USER_STOP_VM
  73, // USER_STOP_SUSPENDED_VM
  503, // USER_SUSPEND_VM_OK
  63, // VM_MIGRATION_DONE (the event names the source host)
  64, // VM_MIGRATION_ABORT
  65, // VM_MIGRATION_FAILED
  120, // VM_MIGRATION_FAILED_FROM_TO
  142, // VM_SET_TO_UNKNOWN_STATUS
  143, // VM_WAS_SET_DOWN_DUE_TO_HOST_REBOOT_OR_MANUAL_FENCE
  35, // USER_UPDATE_VM: the only way os.type changes
  113, // USER_REMOVE_VM_FINISHED
]);

/** Host added, updated, removed. */
export const HOST_EVENT_CODES: ReadonlySet<number> = new Set([42, 43, 44]);

export interface EventTargets {
  readonly vmIds: ReadonlySet<string>;
  readonly hostIds: ReadonlySet<string>;
  /** Highest event id seen: where the next poll starts. */
  readonly lastId: number;
}

export function eventTargets(events: readonly EngineEvent[], from: number): EventTargets {
  const vmIds = new Set<string>();
  const hostIds = new Set<string>();
  let lastId = from;
  for (const e of events) {
    if (e.id > lastId) lastId = e.id;
    if (VM_EVENT_CODES.has(e.code) && e.vmId !== undefined) vmIds.add(e.vmId);
    if (HOST_EVENT_CODES.has(e.code) && e.hostId !== undefined) hostIds.add(e.hostId);
  }
  return { vmIds, hostIds, lastId };
}
