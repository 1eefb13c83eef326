/**
 * The service's Prometheus registry: one per running service (never the
 * module-global one, so services in one process do not share counts), the
 * helpers each part uses to declare its metrics in it, and the rendering in
 * the Prometheus text or the OpenMetrics format.
 */
import {
  AggregatorRegistry,
  collectDefaultMetrics,
  Counter,
  Gauge,
  type GaugeConfiguration,
  Histogram,
  type Metric,
  type MetricObjectWithValues,
  type MetricValue,
  type PrometheusContentType,
  Registry,
} from 'prom-client';
import { HotCounter, HotHistogram } from './hot';

export type { Counter, Gauge, Histogram } from 'prom-client';

/** The two exposition formats, as content types. */
const PROMETHEUS = Registry.PROMETHEUS_CONTENT_TYPE;
const OPENMETRICS = Registry.OPENMETRICS_CONTENT_TYPE;

/** prom-client default metrics that are gauges with a counter's `_total` suffix. */
export const COUNTER_NAMED_GAUGES = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
] as const;

export class Metrics {
  private readonly registry = new Registry();
  /** Scrapes one at a time: rendering OpenMetrics renames counters for its duration (see render). */
  private rendering: Promise<unknown> = Promise.resolve();

  /** A counter; by convention its name ends in `_total`. Label values must be bounded (no ids). */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  /**
   * A gauge; `collect` sets its value at scrape time, for what is cheaper read than tracked.
   * `aggregator`: how worker processes' values combine (default sum; max for a value every process shares).
   */
  gauge<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
    collect?: GaugeConfiguration<L>['collect'],
    aggregator?: 'max',
  ): Gauge<L> {
    return new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      ...(collect === undefined ? {} : { collect }),
      ...(aggregator === undefined ? {} : { aggregator }),
    });
  }

  /** Every metric with its values, to be merged with other processes' (worker mode). */
  values(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return this.registry.getMetricsAsJSON();
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]): Histogram<L> {
    return new Histogram({ name, help, labelNames, buckets: [...buckets], registers: [this.registry] });
  }

  /** A counter for per-call paths: resolve each series once (`labels(...)`), then inc() is one addition. */
  hotCounter<L extends string>(name: string, help: string, labelNames: readonly L[]): HotCounter<L> {
    const metric = new HotCounter(name, help, labelNames);
    this.registry.registerMetric(metric as unknown as Metric);
    return metric;
  }

  /** A histogram for per-call paths, as hotCounter. */
  hotHistogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]): HotHistogram<L> {
    const metric = new HotHistogram(name, help, labelNames, buckets);
    this.registry.registerMetric(metric as unknown as Metric);
    return metric;
  }

  /**
   * Node's process metrics (CPU, RSS, heap, GC, event-loop lag, handles), prom-client's defaults,
   * less the three gauges it names like counters (`nodejs_active_handles_total`, `_requests_total`,
   * `_resources_total`): `promtool check metrics` flags them, and each is the sum over the `type`
   * label of the gauge without `_total` that stays (`sum(nodejs_active_handles)`).
   */
  collectProcessMetrics(): void {
    collectDefaultMetrics({ register: this.registry });
    for (const name of COUNTER_NAMED_GAUGES) this.registry.removeSingleMetric(name);
  }

  /**
   * Every metric, in OpenMetrics when `accept` asks for it, else in the Prometheus text format.
   * `others`: the values of other processes (worker mode), merged in by each metric's aggregator.
   */
  render(
    accept: string | undefined,
    others?: () => Promise<MetricObjectWithValues<MetricValue<string>>[][]>,
  ): Promise<{ contentType: string; body: string }> {
    const contentType = /application\/openmetrics-text/i.test(accept ?? '') ? OPENMETRICS : PROMETHEUS;
    const next = this.rendering.then(async () => {
      const registry =
        others === undefined
          ? this.registry
          : AggregatorRegistry.aggregate<PrometheusContentType>([await this.values(), ...(await others())]);
      return renderAs(registry, contentType);
    });
    this.rendering = next.catch(() => undefined);
    return next;
  }
}

async function renderAs(
  registry: Registry,
  contentType: typeof PROMETHEUS | typeof OPENMETRICS,
): Promise<{ contentType: string; body: string }> {
  if (contentType === PROMETHEUS) return { contentType, body: await registry.metrics() };
  // prom-client's OpenMetrics rendering strips `_total` from the counters' own names, for good
  // (prometheus/client_js PR #829): a view registry renders them, then the names are put back.
  const metrics = registry.getMetricsAsArray() as unknown as (Metric & { name: string })[];
  const names = metrics.map((m) => m.name);
  const view = new Registry<typeof OPENMETRICS>();
  view.setContentType(OPENMETRICS);
  for (const m of metrics) view.registerMetric(m);
  try {
    return { contentType, body: await view.metrics() };
  } finally {
    metrics.forEach((m, i) => (m.name = names[i]!));
  }
}
