/**
 * REST client for the oVirt engine API v4: the resources the service reads
 * (hosts, clusters, VMs page by page, events), each parsed into the model
 * with its unusable records left out and counted. The session (session.ts)
 * logs in and makes every GET; the transport (transport.ts) bounds it.
 */
import { SETTINGS } from '../config/settings';
import { ScorerError } from '../errors';
import type { EngineCluster, EngineEvent, EngineHost, EngineVm } from './model';
import { CLUSTER_FIELDS, EVENT_FIELDS, HOST_FIELDS, type ListShape, VM_FIELDS } from './decoder';
import { listItems, parseCluster, parseEvent, parseEventId, parseHost, parseVm, searchableHostName } from './parse';
import { parseEach, preview, type RecordRejections } from './rejections';
import { EngineSession } from './session';
import type { EngineClientOptions } from './transport';

export type { EngineClientOptions } from './transport';

/** Records (VMs, hosts) parsed and handed over between two yields to the event loop during a refresh: well under a millisecond. */
const PARSE_SLICE = 100;

/** Parses `items` a slice at a time, yielding between slices: a call that arrives meanwhile waits for one slice, not the answer. */
async function parseInSlices<T>(
  items: readonly unknown[],
  parse: (item: unknown) => T,
  rejections: RecordRejections,
  use: (records: T[]) => void,
): Promise<void> {
  for (let at = 0; at < items.length; at += PARSE_SLICE) {
    if (at > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    use(parseEach(items.slice(at, at + PARSE_SLICE), parse, rejections));
  }
}

export class EngineClient {
  private readonly session: EngineSession;
  /** Records left out of answers since the last take; the inventory logs them once per sync. */
  readonly rejections: RecordRejections;

  constructor(private readonly options: EngineClientOptions) {
    this.session = new EngineSession(options);
    this.rejections = this.session.rejections;
  }

  /** `rejections`: where records left out are counted (default the client's own; a sync passes one of its own). */
  async listHosts(signal?: AbortSignal, rejections = this.rejections): Promise<EngineHost[]> {
    const items = await this.session.get('/hosts', {}, signal, {
      list: { listKey: 'host', fields: HOST_FIELDS },
      parse: (body) => listItems(body, 'host'),
    });
    const hosts: EngineHost[] = [];
    await parseInSlices(items, parseHost, rejections, (slice) => hosts.push(...slice));
    return hosts;
  }

  async listClusters(signal?: AbortSignal, rejections = this.rejections): Promise<EngineCluster[]> {
    return this.session.get('/clusters', {}, signal, {
      list: { listKey: 'cluster', fields: CLUSTER_FIELDS },
      parse: (body) => parseEach(listItems(body, 'cluster'), parseCluster, rejections),
    });
  }

  /**
   * Every VM, `pageSize` at a time, handed to `onPage` as each page arrives so
   * the caller never holds the whole collection's JSON. Returns the number of
   * requests made. Pages are not a snapshot: a VM may come twice.
   */
  async forEachVmPage(onPage: (vms: EngineVm[]) => void, signal?: AbortSignal, rejections = this.rejections): Promise<number> {
    const { pageSize: max, maxVms } = this.options;
    let firstOfLast: unknown;
    for (let page = 1; ; page++) {
      const query = { search: `sortby name asc page ${page}`, max: String(max) };
      const items = await this.session.get('/vms', query, signal, {
        list: { listKey: 'vm', fields: VM_FIELDS, maxItems: max },
        parse: (body) => listItems(body, 'vm'),
      });
      // Sorted by name, two pages never start with the same VM: the engine is ignoring `page`.
      const first = (items[0] as { id?: unknown } | undefined)?.id;
      if (page > 1 && first !== undefined && first === firstOfLast) {
        throw new ScorerError(
          'engine_protocol',
          `engine answered GET /vms page ${page} with the same VMs as page ${page - 1}: it ignores paging`,
          { endpoint: 'GET /vms' },
        );
      }
      firstOfLast = first;
      await parseInSlices(items, parseVm, rejections, onPage);
      if (items.length < max) return page;
      if (page * max >= maxVms) {
        throw new ScorerError(
          'engine_protocol',
          `engine has at least ${maxVms} VMs, the most a refresh reads (${SETTINGS.engine.maxVms.env})`,
          { endpoint: 'GET /vms' },
        );
      }
    }
  }

  /** Events with id > `from`, newest first, at most `max` (the engine keeps the newest when there are more). */
  async listEvents(from: number, max: number, signal?: AbortSignal, rejections = this.rejections): Promise<EngineEvent[]> {
    return this.session.get('/events', { from: String(from), max: String(max) }, signal, {
      list: { listKey: 'event', fields: EVENT_FIELDS, maxItems: max },
      parse: (body) => parseEach(listItems(body, 'event'), parseEvent, rejections),
    });
  }

  /** The id of the newest event, 0 when there is none: where to start polling. */
  async newestEventId(signal?: AbortSignal): Promise<number> {
    return this.session.get('/events', { max: '1' }, signal, {
      list: { listKey: 'event', fields: EVENT_FIELDS, maxItems: 1 },
      // Only its id is needed: an event whose other fields are unreadable still says where to poll from.
      parse: (body) => {
        const newest = listItems(body, 'event')[0];
        return newest === undefined ? 0 : parseEventId(newest);
      },
    });
  }

  async getVm(id: string, signal?: AbortSignal): Promise<EngineVm | undefined> {
    return this.session.get(`/vms/${encodeURIComponent(id)}`, {}, signal, {
      parse: (body): EngineVm | undefined => parseVm(body),
      notFound: () => undefined,
    });
  }

  async getHost(id: string, signal?: AbortSignal): Promise<EngineHost | undefined> {
    return this.session.get(`/hosts/${encodeURIComponent(id)}`, {}, signal, {
      parse: (body): EngineHost | undefined => parseHost(body),
      notFound: () => undefined,
    });
  }

  /** The VMs running on one host. The search is by name, so the result is filtered on host.id. */
  async listVmsOnHost(host: EngineHost, signal?: AbortSignal): Promise<EngineVm[]> {
    if (!searchableHostName(host.name)) {
      // Never put an odd name into an engine search: its VMs are known from full refreshes only.
      throw new ScorerError('engine_protocol', `host ${host.id} has a name the engine cannot be searched by: ${preview(host.name)}`, {
        endpoint: 'GET /vms',
      });
    }
    const vms = await this.session.get('/vms', { search: `on_host=${host.name}` }, signal, {
      list: { listKey: 'vm', fields: VM_FIELDS },
      parse: (body) => this.each(listItems(body, 'vm'), parseVm),
    });
    return vms.filter((vm) => vm.hostId === host.id);
  }

  /**
   * GET a resource the service can do without (the scheduling set-up), with the
   * same login, bounds and counting as the inventory's reads. `endpoint`: its
   * template for the metrics, ids left out. Throws ScorerError carrying the HTTP
   * status (403: an account that may not read it).
   */
  async getOptional<T>(
    path: string,
    query: Record<string, string>,
    endpoint: string,
    parse: (body: unknown) => T,
    list?: ListShape,
    signal?: AbortSignal,
  ): Promise<T> {
    return this.session.get(path, query, signal, { parse, endpoint, ...(list === undefined ? {} : { list }) });
  }

  /** The answer's bytes, inflated and not decoded, as the engine sent them (`engine record`); bounded by OVIRT_MAX_ANSWER_MB. */
  async getRaw(path: string, query: Record<string, string>, endpoint: string, signal?: AbortSignal): Promise<Buffer> {
    return this.session.get(path, query, signal, { endpoint, raw: true, parse: (body) => body as Buffer });
  }

  /** Revokes the token (best effort, briefly), cancels whatever is in flight and closes connections. */
  close(): Promise<void> {
    return this.session.close();
  }

  private each<T>(items: readonly unknown[], parse: (item: unknown) => T): T[] {
    return parseEach(items, parse, this.rejections);
  }
}
