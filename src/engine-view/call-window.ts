/**
 * The XML-RPC calls of the last hour, by method and outcome, and when the
 * last one came: what `engine status` says of the scorer's side. One bucket
 * a minute, 60 of them, each a few counters (method labels are bounded by the
 * listener: the known methods, "unknown", "none"), so memory is fixed.
 */
export const WINDOW_MS = 60 * 60_000;
const BUCKET_MS = 60_000;
const BUCKETS = WINDOW_MS / BUCKET_MS;

export interface CallCount {
  readonly method: string;
  readonly outcome: string;
  readonly count: number;
}

export class CallWindow {
  /** Bucket i holds the minute `minutes[i]` (since the epoch); a stale minute is cleared on reuse. */
  private readonly minutes = Array.from({ length: BUCKETS }, () => -1);
  private readonly counts: Map<string, number>[] = Array.from({ length: BUCKETS }, () => new Map<string, number>());
  private last: number | undefined;
  /** Bumped by every call recorded: what was computed from the window is still good while it and the minute are the same. */
  version = 0;

  constructor(private readonly now: () => number = Date.now) {}

  record(method: string, outcome: string): void {
    const t = this.now();
    const minute = Math.floor(t / BUCKET_MS);
    const i = minute % BUCKETS;
    if (this.minutes[i] !== minute) {
      this.minutes[i] = minute;
      this.counts[i]!.clear();
    }
    const key = `${method}\n${outcome}`;
    this.counts[i]!.set(key, (this.counts[i]!.get(key) ?? 0) + 1);
    this.last = t;
    this.version++;
  }

  /** Epoch ms of the newest call; undefined when none came since the start. */
  get lastCallAt(): number | undefined {
    return this.last;
  }

  /** Counts over the last hour (the current minute and the 59 before), by method then outcome. */
  lastHour(): CallCount[] {
    const current = Math.floor(this.now() / BUCKET_MS);
    const sum = new Map<string, number>();
    for (let i = 0; i < BUCKETS; i++) {
      if (this.minutes[i]! <= current - BUCKETS || this.minutes[i]! > current) continue;
      for (const [key, n] of this.counts[i]!) sum.set(key, (sum.get(key) ?? 0) + n);
    }
    return [...sum]
      .map(([key, count]) => {
        const [method = '', outcome = ''] = key.split('\n');
        return { method, outcome, count };
      })
      .sort((a, b) => a.method.localeCompare(b.method) || a.outcome.localeCompare(b.outcome));
  }
}
