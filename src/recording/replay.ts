/**
 * Serves a recording back (OVIRT_URL=file:DIR, through the simulated
 * engine's HTTP server): the items the engine sent, fields untouched, in new
 * list wrappers, so requests other than the recorded ones are answered too:
 * VM pages of any size, one VM or host by id, a host's VMs (on_host=NAME),
 * events after an id. A request the recording cannot answer is a 404.
 */
import { join } from 'node:path';
import { readRecording } from './format';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The items under `key`; an answer that is not a list of them is refused, naming its file. */
function items(body: unknown, key: string, file: string): Json[] {
  const list = isObject(body) ? body[key] : undefined;
  if (!isObject(body) || (list !== undefined && list !== null && typeof list !== 'object'))
    throw new Error(`${file}: not a list of ${key}`);
  return (Array.isArray(list) ? list : isObject(list) ? [list] : []).filter(isObject);
}

/** The engine's list wrapper; an empty list is `{}`, as real engines send it. */
const wrap = (key: string, list: readonly unknown[]): Json => (list.length === 0 ? {} : { [key]: list });

export class RecordedEngine {
  private readonly hosts: Json[] = [];
  private readonly clusters: Json[] = [];
  private readonly vms: Json[] = [];
  /** Newest first, as the engine lists them. */
  private readonly events: Json[] = [];
  /** Answers served as recorded, by path (the scheduling set-up). */
  private readonly verbatim = new Map<string, unknown>();
  readonly anonymized: boolean;

  constructor(
    readonly dir: string,
    maxAnswerBytes: number,
  ) {
    const { index, bodies } = readRecording(dir, maxAnswerBytes);
    this.anonymized = index.anonymized;
    const seenVms = new Set<unknown>();
    for (const [answer, body] of bodies) {
      const file = join(dir, answer.file);
      if (answer.path === '/hosts') this.hosts.push(...items(body, 'host', file));
      else if (answer.path === '/clusters') this.clusters.push(...items(body, 'cluster', file));
      else if (answer.path === '/vms') {
        // Pages are not a snapshot: a VM seen on two pages is kept once, as the inventory would.
        for (const vm of items(body, 'vm', file)) if (!seenVms.has(vm.id) && seenVms.add(vm.id)) this.vms.push(vm);
      } else if (answer.path === '/events') this.events.push(...items(body, 'event', file));
      else this.verbatim.set(answer.path, body);
    }
    this.events.sort((a, b) => Number(b.id) - Number(a.id));
  }

  get counts(): { hosts: number; vms: number; clusters: number; events: number } {
    return { hosts: this.hosts.length, vms: this.vms.length, clusters: this.clusters.length, events: this.events.length };
  }

  /** The answer to GET `path` (below the API root), or undefined: not in the recording. */
  answer(path: string, query: URLSearchParams): unknown {
    const search = query.get('search') ?? '';
    const max = query.has('max') ? Number(query.get('max')) : undefined;
    if (path === '/hosts') return wrap('host', this.hosts);
    if (path === '/clusters') return wrap('cluster', this.clusters);
    if (path === '/vms') {
      let vms = this.vms;
      const onHost = /(?:^|\s)on_host\s*=\s*(\S+)/.exec(search)?.[1];
      if (onHost !== undefined) {
        const host = this.hosts.find((h) => h.name === onHost);
        vms = host === undefined ? [] : vms.filter((vm) => isObject(vm.host) && vm.host.id === host.id);
      }
      // Kept in the recorded order: the pages were asked sorted by name, as the inventory asks them.
      return wrap('vm', page(vms, search, max));
    }
    if (path === '/events') {
      const from = Number(query.get('from') ?? '0');
      return wrap('event', this.events.filter((e) => Number(e.id) > from).slice(0, max ?? Infinity));
    }
    let match: RegExpMatchArray | null;
    if ((match = path.match(/^\/(vms|hosts)\/([^/]+)$/))) {
      const id = decodeURIComponent(match[2]!);
      return (match[1] === 'vms' ? this.vms : this.hosts).find((x) => x.id === id);
    }
    return this.verbatim.get(path);
  }
}

function page<T>(list: readonly T[], search: string, max: number | undefined): T[] {
  if (max === undefined || !Number.isFinite(max)) return [...list];
  const n = Number(/(?:^|\s)page\s+(\d+)/.exec(search)?.[1] ?? '1');
  return list.slice((n - 1) * max, n * max);
}
