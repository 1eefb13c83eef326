/**
 * Counters and histograms for per-call paths: each series is resolved once
 * (labels hashed at that moment) and then costs one addition, where a
 * prom-client inc() or observe() hashes and validates its labels every time
 * (about 1 µs each, measured: a few % of a ScoreHosts call). They render
 * through the same registry, as prom-client's own metric objects do.
 */

export interface CounterSeries {
  inc(): void;
}
export interface HistogramSeries {
  observe(value: number): void;
}

interface Value {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}

/** What a prom-client Registry reads of a metric. */
abstract class HotMetric<S> {
  private readonly series = new Map<string, S>();

  constructor(
    public name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    private readonly labelNames: readonly string[],
  ) {}

  readonly aggregator = 'sum';

  /** The series of `labels` (every label name given, values bounded: no ids). Keep it: using it is the cheap part. */
  protected resolve(labels: Record<string, string>, create: () => S): S {
    const key = this.labelNames.map((n) => labels[n] ?? '').join('\u0000');
    let s = this.series.get(key);
    if (s === undefined) {
      s = create();
      this.series.set(key, s);
    }
    return s;
  }

  protected all(): IterableIterator<S> {
    return this.series.values();
  }

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values() });
  }

  protected abstract values(): Value[];

  reset(): void {
    this.series.clear();
  }
}

export class HotCounter<L extends string> extends HotMetric<{ labels: Record<L, string>; value: number; inc(): void }> {
  constructor(name: string, help: string, labelNames: readonly L[]) {
    super(name, help, 'counter', labelNames);
  }

  labels(labels: Record<L, string>): CounterSeries {
    return this.resolve(labels, () => ({
      labels: { ...labels },
      value: 0,
      inc() {
        this.value++;
      },
    }));
  }

  protected values(): Value[] {
    return [...this.all()].map((s) => ({ labels: { ...s.labels }, value: s.value }));
  }
}

interface HistogramData {
  readonly labels: Record<string, string>;
  readonly counts: Float64Array;
  sum: number;
  count: number;
  observe(value: number): void;
}

export class HotHistogram<L extends string> extends HotMetric<HistogramData> {
  private readonly bounds: readonly number[];

  constructor(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]) {
    super(name, help, 'histogram', labelNames);
    this.bounds = [...buckets].sort((a, b) => a - b);
  }

  labels(labels: Record<L, string>): HistogramSeries {
    const bounds = this.bounds;
    return this.resolve(labels, () => ({
      labels: { ...labels },
      counts: new Float64Array(bounds.length),
      sum: 0,
      count: 0,
      observe(value: number) {
        this.sum += value;
        this.count++;
        for (let i = 0; i < bounds.length; i++) {
          if (value <= bounds[i]!) {
            this.counts[i]!++;
            return;
          }
        }
      },
    }));
  }

  protected values(): Value[] {
    const out: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.all()) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.counts[i]!;
        out.push({ labels: { ...s.labels, le }, value: acc, metricName: bucket });
      });
      out.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: bucket });
      out.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      out.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return out;
  }
}
