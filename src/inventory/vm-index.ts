/**
 * VM id -> placement, immutable. The base is the compact table of the last
 * full refresh (vm-table.ts); event updates make a new index that shares it
 * and carries only the changes since, so applying a few events never copies
 * 100,000 entries.
 */
import { type VmPlacement, VmTable } from './vm-table';

export type { VmPlacement } from './vm-table';

export class VmIndex {
  private constructor(
    private readonly base: VmTable,
    /** null: removed since the base was read. */
    private readonly changes: ReadonlyMap<string, VmPlacement | null>,
    readonly size: number,
  ) {}

  /** `changes`: what changed since `base` was read (a copy in another process has both layers, so it iterates in the same order). */
  static of(base: VmTable | ReadonlyMap<string, VmPlacement>, changes: ReadonlyMap<string, VmPlacement | null> = new Map()): VmIndex {
    const table = base instanceof VmTable ? base : VmTable.from(base);
    let size = table.size;
    for (const [id, placement] of changes) size += (placement === null ? 0 : 1) - (table.has(id) ? 1 : 0);
    return new VmIndex(table, changes, size);
  }

  /** The two layers, to copy the index to another process. */
  layers(): { readonly base: VmTable; readonly changes: ReadonlyMap<string, VmPlacement | null> } {
    return { base: this.base, changes: this.changes };
  }

  get(id: string): VmPlacement | undefined {
    const changed = this.changes.get(id);
    if (changed !== undefined) return changed ?? undefined;
    return this.base.get(id);
  }

  /** Every VM: the base's in their order (as changed since), then those added since. */
  *entries(): IterableIterator<[string, VmPlacement]> {
    for (const [id, placement] of this.base.entries()) {
      const changed = this.changes.get(id);
      if (changed === undefined) yield [id, placement];
      else if (changed !== null) yield [id, changed];
    }
    for (const [id, changed] of this.changes) if (changed !== null && !this.base.has(id)) yield [id, changed];
  }

  /** Up to `n` ids of the base, evenly spaced: enough to tell two indexes apart without walking either. */
  sampleIds(n: number): string[] {
    const size = this.base.size;
    const step = Math.max(1, size / n);
    const ids: string[] = [];
    for (let i = 0; i < size && ids.length < n; i += step) ids.push(this.base.idAt(Math.floor(i)));
    return ids;
  }

  with(updates: ReadonlyMap<string, VmPlacement | null>): VmIndex {
    const changes = new Map(this.changes);
    let size = this.size;
    for (const [id, placement] of updates) {
      size += (placement === null ? 0 : 1) - (this.get(id) === undefined ? 0 : 1);
      changes.set(id, placement);
    }
    return new VmIndex(this.base, changes, size);
  }
}
