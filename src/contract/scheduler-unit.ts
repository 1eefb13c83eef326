/**
 * The policy unit ksm-scorer offers the oVirt engine's external scheduler:
 * what the XML-RPC proxy advertises (src/scheduler-proxy/handlers.ts) and
 * what the engine view looks for in the engine's set-up (src/engine-view/).
 */
export const UNIT_NAME = 'ksm_same_os_score';

export const UNIT_DESCRIPTION =
  'ksm-scorer: prefers hosts that already run VMs of the same operating system, so KSM can share more memory pages (weight 0 to 1000, lower = more same-OS VMs)';
