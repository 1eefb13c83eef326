/**
 * What a sync reads from the engine: the whole inventory for a full refresh,
 * the events since the last poll and the records they name. The sync loop
 * (sync.ts) decides what to read and what to publish; this reads it and says
 * what it could not use. Records the engine sent that cannot be used are left
 * out and logged once per sync, never a reason to fail; what only describes
 * (the clusters, where polls start) is done without rather than failing a
 * refresh.
 */
import { ConcurrencyLimit } from '../concurrency-limit';
import { ScorerError } from '../errors';
import type { Logger } from '../log';
import type { Metrics } from '../metrics/metrics';
import type { EngineCluster, EngineEvent, EngineHost, EngineVm } from '../ovirt/model';
import { searchableHostName } from '../ovirt/parse';
import { type RecordRejections, type RejectionSummary, unusableAsGone } from '../ovirt/rejections';
import { type InventoryChanges, type InventorySnapshot, SnapshotBuilder } from './snapshot';

/**
 * The part of the engine the inventory reads; EngineClient implements it.
 * `rejections`: where a list's unusable records are counted; a sync passes a
 * tally of its own, so what callers' reads leave out meanwhile is not its news.
 */
export interface InventorySource {
  listHosts(signal?: AbortSignal, rejections?: RecordRejections): Promise<EngineHost[]>;
  listClusters(signal?: AbortSignal, rejections?: RecordRejections): Promise<EngineCluster[]>;
  forEachVmPage(onPage: (vms: EngineVm[]) => void, signal?: AbortSignal, rejections?: RecordRejections): Promise<number>;
  getHost(id: string, signal?: AbortSignal): Promise<EngineHost | undefined>;
  getVm(id: string, signal?: AbortSignal): Promise<EngineVm | undefined>;
  listVmsOnHost(host: EngineHost, signal?: AbortSignal): Promise<EngineVm[]>;
  listEvents(from: number, max: number, signal?: AbortSignal, rejections?: RecordRejections): Promise<EngineEvent[]>;
  newestEventId(signal?: AbortSignal): Promise<number>;
  /** Records left out of answers outside a sync's own lists (single reads, callers' reads), logged at the next sync. */
  readonly rejections?: RecordRejections;
}

/** The engine reads the inventory makes for a call; in a worker process they go to the primary. */
export type OnDemandSource = Pick<InventorySource, 'getHost' | 'getVm' | 'listVmsOnHost'>;

export type EngineReadSettings = { readonly eventsIntervalMs: number; readonly refreshIntervalMs: number };

/** A full refresh as read, before the publish guard has judged it. */
export interface FullRead {
  readonly snapshot: InventorySnapshot;
  /** Where events polls start after it; undefined: polls off, or the newest event id could not be read. */
  readonly newestEventId: number | undefined;
  /** Engine requests made. */
  readonly requests: number;
  readonly leftOutHosts: number;
  readonly leftOutVms: number;
  /** Hosts that VMs named but the host list lacked. */
  readonly unlistedHosts: number;
}

/** Most events one poll reads; a full page means some were cut, so a full refresh follows. */
export const EVENTS_PAGE = 1_000;
const TARGETED_READ_CONCURRENCY = 8;
const MAX_EXAMPLE_HOSTS = 3;

export class EngineReads {
  /** The newest event id could not be read at the last try (said once, at warn). */
  private newestEventUnreadable = false;
  /** Hosts that VMs named but the host list lacked at the last full refresh. */
  private unlistedBefore: ReadonlySet<string> = new Set();

  constructor(
    private readonly source: InventorySource,
    private readonly settings: EngineReadSettings,
    private readonly logger: Logger,
    metrics: Metrics,
  ) {
    const unlisted = () => this.unlistedBefore.size;
    metrics.gauge(
      'ksm_scorer_inventory_unlisted_hosts',
      'Hosts that VMs run on but the engine did not list at the last full refresh (a host added or removed meanwhile, or hidden from the account).',
      [],
      function collect() {
        this.set(unlisted());
      },
    );
  }

  /** The whole inventory: hosts, clusters and every VM page, made into generation `generation` after `current`. */
  async full(
    signal: AbortSignal,
    current: InventorySnapshot | undefined,
    made: { generation: number; refreshedAt: number },
  ): Promise<FullRead> {
    // What single reads left out since the last sync is theirs; this refresh counts its own lists.
    this.logLeftOut();
    const rejections = this.source.rejections?.fresh();
    // The newest event id first: whatever happens during the read is polled again after it.
    const newestEventId = this.settings.eventsIntervalMs > 0 ? await this.newestEventId(signal) : undefined;
    const hosts = await this.source.listHosts(signal, rejections);
    const clusters = await this.clusters(signal, rejections);
    const builder = await SnapshotBuilder.start(hosts, clusters, rejections, current?.vmCount);
    const pages = await this.source.forEachVmPage((vms) => builder.addVms(vms), signal, rejections);
    const snapshot = builder.build(made);
    this.logUnlistedHosts(builder.unlistedHosts, rejections);
    const rejected = rejections?.take();
    this.logRejections(rejected);
    return {
      snapshot,
      newestEventId,
      requests: (this.settings.eventsIntervalMs > 0 ? 1 : 0) + 2 + pages,
      leftOutHosts: rejected?.leftOutByKind.host ?? 0,
      leftOutVms: rejected?.leftOutByKind.vm ?? 0,
      unlistedHosts: builder.unlistedHosts.size,
    };
  }

  /**
   * The events after `from` (at most EVENTS_PAGE), and the highest id of those left out as unusable;
   * 'unreadable' when the answer cannot be read at all (it might hold a change that matters, and the
   * same poll would fail again).
   */
  async events(from: number, signal: AbortSignal): Promise<{ events: EngineEvent[]; highestLeftOut: number | undefined } | 'unreadable'> {
    // Events left out (unusable) are counted and skipped: the next full refresh sees whatever they named.
    const rejections = this.source.rejections?.fresh();
    try {
      return { events: await this.source.listEvents(from, EVENTS_PAGE, signal, rejections), highestLeftOut: rejections?.highestEventId() };
    } catch (err) {
      if (!(err instanceof ScorerError) || err.code !== 'engine_protocol') throw err;
      this.logger.warn('events the engine sent cannot be read: full refresh', { from, err });
      return 'unreadable';
    } finally {
      this.logRejections(rejections?.take());
    }
  }

  /** The engine's newest event id; undefined when it is unreadable (its id is not a number). */
  async eventLogEnd(signal: AbortSignal): Promise<number | undefined> {
    try {
      return await this.source.newestEventId(signal);
    } catch (err) {
      if (!(err instanceof ScorerError) || err.code !== 'engine_protocol') throw err;
      return undefined;
    }
  }

  /**
   * Re-reads what events named; 'full refresh' when a host's VMs cannot be
   * searched for by its name. A record that reads back unusable is left out,
   * as a full refresh leaves it out (counted by the client), not re-read in full.
   */
  async changes(vmIds: ReadonlySet<string>, hostIds: ReadonlySet<string>, signal: AbortSignal): Promise<InventoryChanges | 'full refresh'> {
    const vms = new Map<string, EngineVm | null>();
    const hosts = new Map<string, { host: EngineHost; vms: readonly EngineVm[] } | null>();
    let unsearchable = false;
    const jobs = [
      ...[...vmIds].map((id) => async () => void vms.set(id, (await unusableAsGone(this.source.getVm(id, signal))) ?? null)),
      ...[...hostIds].map((id) => async () => {
        const host = await unusableAsGone(this.source.getHost(id, signal));
        if (host !== undefined && !searchableHostName(host.name)) unsearchable = true;
        else hosts.set(id, host === undefined ? null : { host, vms: await this.source.listVmsOnHost(host, signal) });
      }),
    ];
    const limit = new ConcurrencyLimit(TARGETED_READ_CONCURRENCY);
    // Once one host cannot be searched, a full refresh follows: what is still queued is not read.
    await Promise.all(jobs.map((job) => limit.run(async () => (unsearchable ? undefined : job()), signal)));
    return unsearchable ? 'full refresh' : { vms, hosts };
  }

  /** Logs what single reads (callers', a poll's re-reads) left out since the last time. */
  logLeftOut(): void {
    this.logRejections(this.source.rejections?.take());
  }

  /** The newest event id, or undefined when the engine's answer is unreadable (an event id beyond 2^53, ...). */
  private async newestEventId(signal: AbortSignal): Promise<number | undefined> {
    try {
      const id = await this.source.newestEventId(signal);
      this.newestEventUnreadable = false;
      return id;
    } catch (err) {
      // It only says where polls start: unreadable (a bad answer, a 403, a 5xx, a timeout), polls pause, the refresh goes on.
      const e = ScorerError.from(err);
      if (e.code === 'cancelled' || signal.aborted) throw err;
      // Once until it can be read again: an engine that is down must not add a line to every retry.
      const fields = {
        endpoint: e.endpoint ?? 'GET /events',
        status: e.status,
        code: e.code,
        err: e.message,
        refreshIntervalMs: this.settings.refreshIntervalMs,
      };
      const what =
        'the engine newest event cannot be read: no events polls until a full refresh can read it; changes show at full refreshes';
      if (this.newestEventUnreadable) this.logger.debug(what, fields);
      else this.logger.warn(what, fields);
      this.newestEventUnreadable = true;
      return undefined;
    }
  }

  /**
   * The clusters, which only describe hosts (name, KSM policy): when they
   * cannot be read (an account refused /clusters, a proxy's 404, a bad answer)
   * hosts load with their cluster unknown, and the next full refresh tries again.
   */
  private async clusters(signal: AbortSignal, rejections: RecordRejections | undefined): Promise<EngineCluster[]> {
    try {
      return await this.source.listClusters(signal, rejections);
    } catch (err) {
      const e = ScorerError.from(err);
      if (e.code === 'cancelled' || signal.aborted) throw err;
      this.logger.warn(
        'the engine clusters cannot be read: hosts load with their cluster unknown (cluster_name "", ksm_enabled false); retried at the next full refresh',
        {
          endpoint: e.endpoint ?? 'GET /clusters',
          status: e.status,
          code: e.code,
          err: e.message,
        },
      );
      return [];
    }
  }

  /**
   * VMs on hosts the host list lacks. Once, it is a race (a host added or
   * removed between the two reads); at two refreshes in a row, the account
   * is probably not allowed to see those hosts.
   */
  private logUnlistedHosts(unlisted: ReadonlyMap<string, number>, rejections: RecordRejections | undefined): void {
    // A host listed but left out as unusable is in the records line already: it is neither a race nor a permission.
    const missing = [...unlisted].filter(([id]) => rejections?.leftOutHost(id) !== true);
    const before = this.unlistedBefore;
    this.unlistedBefore = new Set(missing.map(([id]) => id));
    if (missing.length === 0) return;
    const again = missing.map(([id]) => id).filter((id) => before.has(id));
    let vms = 0;
    for (const [, n] of missing) vms += n;
    const fields = {
      hosts: missing.length,
      vms,
      examples: (again.length > 0 ? again : missing.map(([id]) => id)).slice(0, MAX_EXAMPLE_HOSTS),
    };
    if (again.length > 0) {
      this.logger.warn(
        'VMs run on hosts the engine did not list at two full refreshes in a row: the service account probably lacks permission to see those hosts (docs/deployment.md says which role it needs); the VMs are kept and score by vm_id, and a call naming such a host reads it from the engine',
        { ...fields, hostsAgain: again.length },
      );
    } else {
      this.logger.info(
        'VMs name hosts the host list lacks (a host added or removed while the refresh read the engine?): the VMs are kept; the next full refresh reads the host list again',
        fields,
      );
    }
  }

  /** One line per sync for what the engine sent that could not be used: counts per reason, a few example ids. */
  private logRejections(rejected: RejectionSummary | undefined): void {
    if (rejected === undefined) return;
    const fields = { leftOut: rejected.leftOut, reasons: rejected.reasons, examples: rejected.examples, example: rejected.example };
    if (rejected.leftOut > 0) this.logger.warn('engine records left out: the rest of the engine data is used', fields);
    else this.logger.info('engine records listed twice: each is used once, where it was listed last', fields);
  }
}
