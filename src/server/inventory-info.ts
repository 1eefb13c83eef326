/** The InventoryInfo every answer carries: which snapshot it came from, and how fresh that is. */
import type { InventoryInfo as InventoryInfoMessage } from '../generated/ksmscorer/v1/InventoryInfo';
import type { InventoryInfo } from '../inventory/inventory';

export function inventoryMessage(info: InventoryInfo): InventoryInfoMessage {
  return {
    refreshed_at: { seconds: Math.floor(info.refreshedAt / 1000), nanos: (info.refreshedAt % 1000) * 1_000_000 },
    stale: info.stale,
    generation: info.generation,
    host_count: info.hostCount,
    vm_count: info.vmCount,
  };
}
