/**
 * The service's one concurrency limiter: on-demand reads (per process, and in
 * the primary for every worker's), and the targeted re-reads of an events poll.
 */
import { ScorerError } from './errors';

/** At most `limit` tasks at once; the rest wait in order, or leave when their signal fires. */
export class ConcurrencyLimit {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>, signal: AbortSignal): Promise<T> {
    if (this.active < this.limit) this.active++;
    else await this.slot(signal); // handed over by a finishing task: `active` stays as it is
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.active--;
    }
  }

  private slot(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.waiting.splice(this.waiting.indexOf(granted), 1);
        reject(ScorerError.from(signal.reason));
      };
      const granted = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      if (signal.aborted) return reject(ScorerError.from(signal.reason));
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(granted);
    });
  }
}
