/**
 * Request and answer over the IPC channel between the primary and a worker,
 * the one way either side asks the other: each call gets an id, waits among
 * the pending ones for the message that carries its answer, and ends at its
 * timeout or when its caller's signal fires (then `onCancel` tells the other
 * side, so it can stop the work). An answer that comes after is dropped.
 */
import { ScorerError } from '../errors';

export interface IpcCallOptions {
  /** How long to wait for the answer, and the error the call fails with after that. */
  readonly timeout?: { readonly ms: number; error(): Error };
  /** The caller went away: the call fails with the signal's reason. */
  readonly signal?: AbortSignal;
  /** Told when `signal` ended the call. */
  readonly onCancel?: (id: number) => void;
}

export class IpcCalls<T> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: T): void; reject(err: Error): void }>();

  /** `send` sends the request carrying `id`; the call ends with the answer to that id. */
  call(send: (id: number) => void, { timeout, signal, onCancel }: IpcCallOptions = {}): Promise<T> {
    if (signal?.aborted) return Promise.reject(ScorerError.from(signal.reason));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const end = () => {
        this.pending.delete(id);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        end();
        onCancel?.(id);
        reject(ScorerError.from(signal!.reason));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          end();
          reject(timeout.error());
        }, timeout.ms);
      }
      this.pending.set(id, {
        resolve: (value) => {
          end();
          resolve(value);
        },
        reject: (err) => {
          end();
          reject(err);
        },
      });
      send(id);
    });
  }

  /** The answer to call `id` (dropped when that call has ended). */
  answer(id: number, value: T): void {
    this.pending.get(id)?.resolve(value);
  }

  /** Call `id` failed on the other side. */
  fail(id: number, err: Error): void {
    this.pending.get(id)?.reject(err);
  }

  /** Every call still waiting fails (this process is stopping). */
  failAll(err: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(err);
  }
}
