/**
 * Where the sync loop hands each generation it makes: the served inventory
 * when this process answers calls itself (inventory.ts), or in the primary of
 * a worker-mode service the feed that sends it on to the workers
 * (src/cluster/generation-feed.ts).
 */
import type { InventoryChanges, InventorySnapshot } from './snapshot';

/** How a published snapshot was made from the one before: what another process needs to follow along. */
export type SnapshotUpdate =
  | { readonly kind: 'full' }
  | { readonly kind: 'changes'; readonly changes: InventoryChanges }
  /** The same data, confirmed at a new refreshedAt. */
  | { readonly kind: 'refreshed' };

export interface GenerationSink {
  /** A new generation; `ageMs`: how long ago its data was read, on a clock that never jumps. */
  publish(snapshot: InventorySnapshot, ageMs: number, update: SnapshotUpdate): void;
  /** A sync failed; until the first load, calls are told why. */
  syncFailed(reason: string): void;
}
