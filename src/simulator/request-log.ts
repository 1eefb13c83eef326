/**
 * What the simulated engine keeps of the requests it served, for tests to count what the service
 * asked. Only as many as the one who started it asked for, the newest kept (a ring): a simulator
 * serving for days (`serve` without OVIRT_URL) keeps none, and never grows.
 */
import type { IncomingMessage } from 'node:http';

export interface RecordedRequest {
  readonly method: string;
  /** Path below /ovirt-engine, without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  readonly status: number;
  readonly gzipped: boolean;
}

/** The newest `capacity` items added (none when it is 0); adding to a full ring overwrites the oldest. */
export class Ring<T> {
  private readonly slots: T[] = [];
  /** Where the next item goes once the ring is full: the oldest one's slot. */
  private next = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`ring capacity must be a whole number >= 0, not ${capacity}`);
  }

  add(item: T): void {
    if (this.capacity === 0) return;
    if (this.slots.length < this.capacity) {
      this.slots.push(item);
      return;
    }
    this.slots[this.next] = item;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Oldest first; a copy. */
  items(): T[] {
    return [...this.slots.slice(this.next), ...this.slots.slice(0, this.next)];
  }

  clear(): void {
    this.slots.length = 0;
    this.next = 0;
  }
}
