/**
 * Reads through to the engine for what a call needs and the snapshot does
 * not hold (a host or VM newer than the last sync, or an id the engine does
 * not have), within bounds: a per-call budget, a global rate and concurrency,
 * and a memory of what the engine did not have. Concurrent callers share one
 * read per id (lru-cache's fetch); a call adds one abort listener, however
 * many ids it waits for. Counts cache hits, misses, evictions and reads.
 */
import { LRUCache } from 'lru-cache';
import { abortable } from '../abortable';
import { ConcurrencyLimit } from '../concurrency-limit';
import type { InventorySettings } from '../config/load';
import { SETTINGS } from '../config/settings';
import { ScorerError } from '../errors';
import type { Logger } from '../log';
import type { Counter, Metrics } from '../metrics/metrics';
import { unusableAsGone } from '../ovirt/rejections';
import { HostOsCounts } from '../scoring/os-counts';
import type { CallNeeds, OpenCallSignal } from '../scoring/view';
import { CallView, type OnDemandHost } from './call-view';
import type { InventorySnapshot, VmPlacement } from './snapshot';
import type { OnDemandSource } from './engine-reads';

export type { CallNeeds, OpenCallSignal };

export type ReadThroughSettings = Pick<
  InventorySettings,
  'onDemandCacheSize' | 'onDemandConcurrency' | 'onDemandPerSecond' | 'onDemandPerCall' | 'notFoundTtlMs'
>;

/** A read's result: found (valid for the generation it was read in), or not found (remembered for a while). */
type Entry =
  | { readonly found: true; readonly generation: number; readonly host?: OnDemandHost; readonly vm?: VmPlacement }
  | { readonly found: false };

const NOT_FOUND: Entry = Object.freeze({ found: false });

type Kind = 'host' | 'vm';
const kindOf = (key: string): Kind => (key.startsWith('h:') ? 'host' : 'vm');

export class ReadThrough {
  private readonly cache: LRUCache<string, Entry, { generation: number }>;
  private readonly limiter: ConcurrencyLimit;
  private readonly rate: TokenBucket;
  private readonly hits: Counter<'kind'>;
  private readonly misses: Counter<'kind'>;
  private readonly reads: Counter<'kind' | 'outcome'>;

  constructor(
    private readonly source: OnDemandSource,
    private readonly settings: ReadThroughSettings,
    private readonly logger: Logger,
    /** Aborted when the inventory stops: every on-demand read ends with it. */
    private readonly stopSignal: AbortSignal,
    metrics: Metrics,
    monotonicNow: () => number = () => performance.now(),
  ) {
    this.limiter = new ConcurrencyLimit(settings.onDemandConcurrency);
    this.rate = new TokenBucket(settings.onDemandPerSecond, monotonicNow);
    const evictions = metrics.counter(
      'ksm_scorer_cache_evictions_total',
      `Entries the on-demand cache dropped to stay within ${SETTINGS.inventory.onDemandCacheSize.env}.`,
    );
    this.cache = new LRUCache<string, Entry, { generation: number }>({
      max: settings.onDemandCacheSize,
      fetchMethod: (key, _stale, { signal, options, context }) =>
        this.read(key, context.generation, AbortSignal.any([signal, this.stopSignal]), options),
      dispose: (_value, _key, reason) => reason === 'evict' && evictions.inc(),
    });
    const size = () => this.cache.size;
    metrics.gauge(
      'ksm_scorer_cache_entries',
      'Entries in the on-demand cache: hosts and VMs read beyond the snapshot, found or not.',
      [],
      function collect() {
        this.set(size());
      },
    );
    this.hits = metrics.counter(
      'ksm_scorer_cache_hits_total',
      'Ids beyond the snapshot found in the on-demand cache, by kind (host, vm).',
      ['kind'],
    );
    this.misses = metrics.counter(
      'ksm_scorer_cache_misses_total',
      'Ids in neither the snapshot nor the on-demand cache, by kind: each needs an engine read.',
      ['kind'],
    );
    this.reads = metrics.counter(
      'ksm_scorer_on_demand_fetches_total',
      'On-demand engine reads by kind (host, vm) and outcome (found, not_found, failed).',
      ['kind', 'outcome'],
    );
  }

  /**
   * Runs `use` on a view of `snapshot` holding everything `needs` names. When
   * the snapshot (or what was read before) holds it all, `use` runs now, in
   * this synchronous run, and its result is returned as it is; otherwise what
   * is missing is read first, bounded by the call's signal.
   */
  withView<T>(snapshot: InventorySnapshot, needs: CallNeeds, openSignal: OpenCallSignal, use: (view: CallView) => T): T | Promise<T> {
    let hosts: Map<string, OnDemandHost | undefined> | undefined;
    let vms: Map<string, VmPlacement | undefined> | undefined;
    let missing: Set<string> | undefined;
    const need = (key: string) => {
      missing ??= new Set();
      if (missing.has(key)) return;
      missing.add(key);
      this.misses.inc({ kind: kindOf(key) });
      // Checked as it grows: 100,000 unknown ids cost no more than the budget does.
      if (missing.size > this.settings.onDemandPerCall)
        this.refuse(
          missing,
          `more than ${this.settings.onDemandPerCall}`,
          `one call may read at most that many from the oVirt engine (${SETTINGS.inventory.onDemandPerCall.env})`,
        );
    };
    for (const id of needs.hostIds) {
      if (snapshot.hosts.has(id) || hosts?.has(id)) continue;
      const entry = this.known(`h:${id}`, snapshot.generation);
      if (entry === undefined) need(`h:${id}`);
      else (hosts ??= new Map()).set(id, entry.found ? entry.host : undefined);
    }
    for (const id of needs.vmIds) {
      if (snapshot.vms.get(id) !== undefined || vms?.has(id)) continue;
      const entry = this.known(`v:${id}`, snapshot.generation);
      if (entry === undefined) need(`v:${id}`);
      else (vms ??= new Map()).set(id, entry.found ? entry.vm : undefined);
    }
    if (missing === undefined) return use(new CallView(snapshot, hosts, vms));
    const keys = [...missing];
    if (!this.rate.take(keys.length)) {
      this.refuse(
        missing,
        String(keys.length),
        `the service is already reading ${this.settings.onDemandPerSecond} ids a second from the oVirt engine on demand (${SETTINGS.inventory.onDemandPerSecond.env}); try again in a second`,
      );
    }
    return this.readAll(keys, snapshot.generation, openSignal).then((entries) => {
      keys.forEach((key, i) => {
        const entry = entries[i];
        const id = key.slice(2);
        if (key.startsWith('h:')) (hosts ??= new Map()).set(id, entry?.found ? entry.host : undefined);
        else (vms ??= new Map()).set(id, entry?.found ? entry.vm : undefined);
      });
      return use(new CallView(snapshot, hosts, vms));
    });
  }

  /** What was read before and still holds: a found entry of this generation, or a remembered not-found. */
  private known(key: string, generation: number): Entry | undefined {
    const entry = this.cache.get(key);
    if (entry !== undefined && (!entry.found || entry.generation === generation)) {
      this.hits.inc({ kind: kindOf(key) });
      return entry;
    }
    if (entry !== undefined) this.cache.delete(key); // read in an older generation: read again
    return undefined;
  }

  /** RESOURCE_EXHAUSTED, before any engine request, naming the fields whose ids are missing. */
  private refuse(missing: ReadonlySet<string>, howMany: string, why: string): never {
    let hosts = 0;
    for (const key of missing) if (key.startsWith('h:')) hosts++;
    const fields = [hosts > 0 ? 'host_ids' : '', missing.size > hosts ? 'vm_id' : ''].filter((f) => f !== '').join(' and ');
    throw new ScorerError('resource_exhausted', `${fields}: ${howMany} ids not in the inventory; ${why}`);
  }

  private async readAll(keys: readonly string[], generation: number, openSignal: OpenCallSignal): Promise<(Entry | undefined)[]> {
    const call = openSignal();
    try {
      // The reads go on for other callers if this one gives up: one listener for the call, not one per read.
      return await abortable(Promise.all(keys.map((key) => this.cache.fetch(key, { context: { generation } }))), call.signal);
    } finally {
      call.dispose();
    }
  }

  /** The fetchMethod: one engine read, counted by its outcome. */
  private async read(key: string, generation: number, signal: AbortSignal, options: { ttl?: number }): Promise<Entry> {
    const kind = kindOf(key);
    try {
      const entry = await this.readEntry(key, generation, signal);
      this.reads.inc({ kind, outcome: entry.found ? 'found' : 'not_found' });
      // Found entries hold until the next generation; not-found ones for a while, whatever the generation.
      if (!entry.found) options.ttl = this.settings.notFoundTtlMs;
      this.logger.debug('read on demand', { kind, id: key.slice(2), found: entry.found });
      return entry;
    } catch (err) {
      this.reads.inc({ kind, outcome: 'failed' });
      throw err;
    }
  }

  /** One engine read: a host is its GET and its VM search, each through the concurrency limit. */
  private async readEntry(key: string, generation: number, signal: AbortSignal): Promise<Entry> {
    const id = key.slice(2);
    if (key.startsWith('h:')) {
      const host = await this.limiter.run(() => unusableAsGone(this.source.getHost(id, signal)), signal);
      if (host === undefined) return NOT_FOUND;
      const vms = await this.limiter.run(() => this.source.listVmsOnHost(host, signal), signal);
      return { found: true, generation, host: { counts: HostOsCounts.of(vms.map((vm) => vm.os)), vmIds: new Set(vms.map((vm) => vm.id)) } };
    }
    const vm = await this.limiter.run(() => unusableAsGone(this.source.getVm(id, signal)), signal);
    return vm === undefined ? NOT_FOUND : { found: true, generation, vm: { hostId: vm.hostId, os: vm.os } };
  }
}

/** `perSecond` tokens a second, holding at most one second's worth. */
class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number,
  ) {
    this.tokens = perSecond;
    this.last = now();
  }

  take(n: number): boolean {
    const now = this.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (n > this.tokens) return false;
    this.tokens -= n;
    return true;
  }
}
