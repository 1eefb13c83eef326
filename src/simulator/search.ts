/**
 * The engine's search language, the part the service (and the old plugin) uses: which hosts,
 * VMs and events one list request answers with, page by page.
 */
import type { SimEvent } from './events';
import type { SimHost, SimInventory, SimVm } from './inventory';

/** `search=... on_host=NAME / host=NAME / hosts.id=ID, sortby name asc, page N` with `max`. */
export function searchVms(inventory: SimInventory, search: string, max: number | undefined): SimVm[] {
  const sorted = /sortby\s+name(\s+asc)?/.test(search);
  let vms: readonly SimVm[] = sorted ? inventory.vmsByName() : [...inventory.vms.values()];
  const onHost = /(?:^|\s)on_host\s*=\s*(\S+)/.exec(search)?.[1];
  if (onHost !== undefined) {
    const host = [...inventory.hosts.values()].find((h) => h.name === onHost);
    vms = host === undefined ? [] : vms.filter((vm) => vm.hostId === host.id);
  }
  // The old plugin's fuzzy `host=NAME` (a substring match on real engines).
  const hostLike = /(?:^|\s)host\s*=\s*(\S+)/.exec(search)?.[1];
  if (hostLike !== undefined) {
    const ids = new Set([...inventory.hosts.values()].filter((h) => h.name.includes(hostLike)).map((h) => h.id));
    vms = vms.filter((vm) => vm.hostId !== undefined && ids.has(vm.hostId));
  }
  const hostsId = /(?:^|\s)hosts\.id\s*=\s*(\S+)/.exec(search)?.[1];
  if (hostsId !== undefined) vms = vms.filter((vm) => vm.hostId === hostsId);
  return page(vms, search, max);
}

/** `id=A or id=B ...`, as the old plugin asked; anything else lists every host. Hidden hosts are never listed. */
export function searchHosts(inventory: SimInventory, hidden: ReadonlySet<string>, search: string, max: number | undefined): SimHost[] {
  const ids = [...search.matchAll(/(?:^|\s)id\s*=\s*([0-9a-f-]+)/g)].map((m) => m[1]!);
  const hosts = ids.length > 0 ? ids.flatMap((id) => inventory.hosts.get(id) ?? []) : [...inventory.hosts.values()];
  return page(
    hosts.filter((h) => !hidden.has(h.id)),
    search,
    max,
  );
}

/** Events with id > from, newest first, at most max: the newest ones when there are more. */
export function searchEvents(inventory: SimInventory, params: URLSearchParams): SimEvent[] {
  const from = Number(params.get('from') ?? '0');
  const max = params.has('max') ? Number(params.get('max')) : Infinity;
  const out: SimEvent[] = [];
  const events = inventory.events;
  for (let i = events.length - 1; i >= 0 && out.length < max; i--) {
    const e = events[i]!;
    if (e.id <= from) break;
    out.push(e);
  }
  return out;
}

function page<T>(items: readonly T[], search: string, max: number | undefined): T[] {
  if (max === undefined || !Number.isFinite(max)) return [...items];
  const n = Number(/(?:^|\s)page\s+(\d+)/.exec(search)?.[1] ?? '1');
  return items.slice((n - 1) * max, n * max);
}
