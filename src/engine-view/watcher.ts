/**
 * Reads the engine's scheduling set-up at start and then once per full
 * refresh interval, on a timer of its own (a few requests, never per call),
 * and keeps the last answer for `engine status` and /metrics. The read is
 * optional: a failure (403 for an account that may not read policies, 404,
 * a bad answer, a dead engine) makes the view "unknown" with the reason,
 * logged, and never reaches the inventory or the service's health.
 */
import type { Config } from '../config/load';
import { ScorerError } from '../errors';
import type { EngineClient } from '../ovirt/client';
import type { Logger } from '../log';
import type { Metrics } from '../metrics/metrics';
import { readSchedulingSetup, type SchedulingSetup } from '../ovirt/scheduling';
import { type CallWindow } from './call-window';
import { engineStatus, type EngineStatus, type SetupRead } from './status';

export interface EngineViewOptions {
  readonly read: (signal: AbortSignal) => Promise<SchedulingSetup>;
  readonly calls: CallWindow;
  /** The XML-RPC listener is on. */
  readonly listening: boolean;
  readonly intervalMs: number;
  /** The engine account, named when it may not read the set-up. */
  readonly account: string;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export class EngineViewWatcher {
  private last: SetupRead = { kind: 'pending' };
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private readonly stopped = new AbortController();
  private loggedState: string | undefined;
  private memo: { read: SetupRead; key: string; status: EngineStatus } | undefined;

  constructor(private readonly options: EngineViewOptions) {
    const weighing = (s: EngineStatus) => s.engine.clusters.filter((c) => c.weighsUnit).length;
    const gauges: [name: string, help: string, value: (s: EngineStatus) => number][] = [
      [
        'ksm_scorer_engine_view_known',
        "The engine's scheduling set-up was read (1) or is unknown (0: not read yet, refused, or failed).",
        (s) => Number(s.engine.known),
      ],
      [
        'ksm_scorer_engine_unit_discovered',
        'The engine lists the external policy unit ksm_same_os_score (1), or not or unknown (0).',
        (s) => Number(s.engine.unitDiscovered),
      ],
      [
        'ksm_scorer_engine_unit_enabled',
        'The engine has the unit ksm_same_os_score enabled (1), or not or unknown (0).',
        (s) => Number(s.engine.unitEnabled),
      ],
      [
        'ksm_scorer_engine_policies_weighing_unit',
        'Scheduling policies whose weights include ksm_same_os_score (0 when unknown).',
        (s) => s.engine.policies.length,
      ],
      ['ksm_scorer_engine_clusters_weighing_unit', 'Clusters whose scheduling policy weighs ksm_same_os_score (0 when unknown).', weighing],
      [
        'ksm_scorer_engine_clusters_not_weighing_unit',
        'Clusters whose scheduling policy does not weigh ksm_same_os_score (0 when unknown).',
        (s) => s.engine.clusters.length - weighing(s),
      ],
      [
        'ksm_scorer_xmlrpc_last_call_timestamp_seconds',
        "When the engine's last XML-RPC call arrived, Unix time; 0 when none came since the start.",
        (s) => (s.calls.lastCallAt ?? 0) / 1000,
      ],
    ];
    const status = () => this.status();
    for (const [name, help, value] of gauges) {
      options.metrics.gauge(name, help, [], function () {
        this.set(value(status()));
      });
    }
  }

  /** Settles when the first read has (tests wait for it: its requests are not a call's). */
  firstRead: Promise<void> = Promise.resolve();

  /** The first read now (not awaited: the service does not wait on an optional read), then one per interval. */
  start(): void {
    this.firstRead = this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.intervalMs);
    this.timer.unref();
  }

  /** A read now, unless one is running; resolves when it is done. Never rejects. */
  refresh(): Promise<void> {
    this.reading ??= this.readOnce().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  /** Computed again only after a read, a call, or a minute (a scrape asks once per gauge; thousands of clusters make it worth it). */
  status(): EngineStatus {
    const { calls, listening, account } = this.options;
    const key = `${calls.version} ${Math.floor(Date.now() / 60_000)}`;
    if (this.memo?.read === this.last && this.memo.key === key) return this.memo.status;
    const status = engineStatus(this.last, { listening, counts: calls.lastHour(), lastCallAt: calls.lastCallAt }, account);
    this.memo = { read: this.last, key, status };
    return status;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.stopped.abort(new ScorerError('cancelled', 'engine view stopped'));
    await this.reading;
  }

  private async readOnce(): Promise<void> {
    if (this.stopped.signal.aborted) return;
    try {
      const setup = await this.options.read(this.stopped.signal);
      this.last = { kind: 'read', setup, at: Date.now() };
    } catch (err) {
      if (this.stopped.signal.aborted) return;
      const e = ScorerError.from(err);
      const reason = `${e.endpoint ?? 'engine'}: ${e.status !== undefined ? `HTTP ${e.status}` : e.code}${e.status === 403 ? ', not permitted for this account' : ''} (${e.message})`;
      this.last = { kind: 'failed', reason, at: Date.now() };
    }
    this.logIfChanged();
  }

  /** One line at start with the engine's view; later only when the state changes. */
  private logIfChanged(): void {
    const s = this.status();
    if (s.state === this.loggedState) return;
    const first = this.loggedState === undefined;
    this.loggedState = s.state;
    const fields = {
      state: s.state,
      advice: s.advice,
      policies: s.engine.policies.map((p) => `${p.name} (factor ${p.factor})`),
      clustersWeighingUnit: s.engine.clusters.filter((c) => c.weighsUnit).length,
      clusters: s.engine.clusters.length,
    };
    const ok = s.state === 'in_use' || s.state === 'not_called';
    const message = first ? "the engine's view of ksm-scorer" : "the engine's view of ksm-scorer changed";
    if (ok) this.options.logger.info(message, fields);
    else this.options.logger.warn(message, fields);
  }
}

/** The watcher of a service: the engine client's reads, every full refresh interval. */
export function engineViewWatcher(
  config: Config,
  client: EngineClient,
  account: string,
  calls: CallWindow,
  logger: Logger,
  metrics: Metrics,
): EngineViewWatcher {
  return new EngineViewWatcher({
    read: (signal) => readSchedulingSetup(client, signal),
    calls,
    listening: config.ovirtProxy.listen !== undefined,
    intervalMs: config.inventory.refreshIntervalMs,
    account,
    logger,
    metrics,
  });
}
