/**
 * How long the event loop was held up while something ran (every call waits that long): node's
 * monitorEventLoopDelay at its finest resolution, 1 ms, which is subtracted from what it reports.
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

export class LoopDelay {
  readonly #histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 1 });

  constructor() {
    this.#histogram.enable();
  }

  /** 99th percentile of the delays seen, in ms (2 decimals). */
  p99Ms(): number {
    return toMs(this.#histogram.percentile(99));
  }

  /** Longest delay seen, in ms (2 decimals). */
  maxMs(): number {
    return toMs(this.#histogram.max);
  }

  reset(): void {
    this.#histogram.reset();
  }

  stop(): void {
    this.#histogram.disable();
  }
}

const toMs = (ns: number) => Math.max(0, Math.round((ns / 1e6 - 1) * 100) / 100);
