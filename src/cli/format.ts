/** Plain-text output of the CLI: aligned tables, OS identities and the inventory line every listing ends with. */
import type { InventoryInfo__Output } from '../generated/ksmscorer/v1/InventoryInfo';

/** Columns padded to their widest cell; `right` columns (numbers) aligned right. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], right: ReadonlySet<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** `rhel_8x64 "Red Hat Enterprise Linux 8.6"`, or `rhel_8x64, no version` for the empty version. */
export function osLabel(os: { type: string; version: string } | null | undefined): string {
  if (!os) return '?';
  return os.version === '' ? `${os.type}, no version` : `${os.type} ${JSON.stringify(os.version)}`;
}

export function inventoryLine(inv: InventoryInfo__Output | null | undefined): string {
  const refreshed = inv?.refreshed_at ? new Date(Number(inv.refreshed_at.seconds) * 1000).toISOString() : 'unknown';
  return `inventory: generation ${inv?.generation ?? '?'}, ${inv?.host_count ?? '?'} hosts, ${inv?.vm_count ?? '?'} VMs, refreshed ${refreshed}${inv?.stale ? ' (STALE)' : ''}`;
}

export const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
