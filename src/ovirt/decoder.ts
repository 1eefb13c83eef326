/**
 * Decodes engine answers without letting a large or hostile one hold up or
 * swell the main thread. A page of 500 VMs is about 2 MB of JSON (links and
 * actions make up most of it); gunzip and JSON.parse of it block an event
 * loop for ~6 ms, and a body of tiny objects can cost 50 times its size in
 * heap. So only small answers are decoded inline; the rest go to a worker
 * with a bounded heap, which keeps only the fields the inventory reads of at
 * most the items asked for, and sends back a few small objects.
 * Typed parsing (and its errors) stays on the main thread, in parse.ts.
 */
import { Worker } from 'node:worker_threads';
import { gunzip } from 'node:zlib';
import { SETTINGS, type SettingName } from '../config/settings';
import { ScorerError } from '../errors';

/** Which fields to keep: `true` keeps a value as it is, an object keeps those sub-fields. */
export interface Projection {
  readonly [field: string]: true | Projection;
}

/** The fields of a VM that parseVm reads. */
export const VM_FIELDS: Projection = {
  id: true,
  host: { id: true },
  os: { type: true, version: { full_version: true } },
  guest_operating_system: { distribution: true, version: { full_version: true } },
};

/** The fields of a host that parseHost reads. */
export const HOST_FIELDS: Projection = { id: true, name: true, status: true, cluster: { id: true }, ksm: { enabled: true } };

/** The fields of a cluster that parseCluster reads. */
export const CLUSTER_FIELDS: Projection = { id: true, name: true, ksm: { enabled: true } };

/** The fields of an event that parseEvent reads. */
export const EVENT_FIELDS: Projection = { id: true, code: true, vm: { id: true }, host: { id: true } };

/** A list answer, decoded in the worker: its items under `listKey`, each projected, at most `maxItems` of them. */
export interface ListShape {
  readonly listKey: string;
  readonly fields: Projection;
  readonly maxItems?: number;
}

/** Answers up to this size (inflated) are decoded inline: a worker round trip would cost more. */
const INLINE_LIMIT = 64 * 1024;

/** Items of a list the worker sends back per message: a page of VMs in one, 5,000 hosts in ten of about half a millisecond each. */
const LIST_PART = 500;

/** The decode thread's nice value (0 normal, 19 lowest): the lowest, measured best for callers during a 100,000-VM refresh. */
const DECODE_NICE = 19;

// Plain JS so it runs from dist/ and under the test runner alike; generic, so it stays this small.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { gunzipSync } = require('node:zlib');
// Below the threads that answer calls: a 2 MB page parsed here must not take a core from them.
// (On Linux the nice value is per thread: this one only; raising it needs no privilege.)
try { require('node:os').setPriority(${DECODE_NICE}); } catch {}
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
function project(value, spec) {
  if (!isObject(value)) return typeof value === 'object' ? null : value;
  const out = {};
  for (const key of Object.keys(spec)) {
    if (key in value) out[key] = spec[key] === true ? (typeof value[key] === 'object' ? null : value[key]) : project(value[key], spec[key]);
  }
  return out;
}
// A long list goes back LIST_PART items at a time, the next when the main thread asks for it: each part is
// deserialised there in an event-loop turn of its own (5,000 hosts at once held it for 5 ms). One list is
// held at a time: answers that arrive meanwhile wait as bytes, so the heap holds one parsed answer, as before.
let sending; // { id, items, at, fields, listKey } of the list being sent
const waiting = [];
const sendPart = () => {
  const part = sending.items.slice(sending.at, sending.at + ${LIST_PART}).map((item) => project(item, sending.fields));
  sending.at += ${LIST_PART};
  if (sending.at < sending.items.length) return parentPort.postMessage({ id: sending.id, part });
  const { id, listKey } = sending;
  sending = undefined;
  parentPort.postMessage({ id, body: { [listKey]: part } });
};
const decode = ({ id, bytes, gzip, maxBytes, listKey, fields, maxItems }) => {
  const buf = Buffer.from(bytes);
  let raw;
  try { raw = gzip ? gunzipSync(buf, { maxOutputLength: maxBytes }) : buf; } catch (err) {
    return parentPort.postMessage({ id, tooLarge: err && err.code === 'ERR_BUFFER_TOO_LARGE', body: undefined });
  }
  let body;
  try { body = JSON.parse(raw.toString('utf8')); } catch { return parentPort.postMessage({ id, body: undefined }); }
  // Only the list's items cross back, projected to scalars: never a whole (possibly deep) answer.
  if (!isObject(body)) return parentPort.postMessage({ id, body: undefined });
  if (!(listKey in body)) return parentPort.postMessage({ id, body: {} });
  const list = body[listKey];
  const items = Array.isArray(list) ? list : [list];
  if (maxItems !== undefined && items.length > maxItems) {
    return parentPort.postMessage({ id, error: items.length + ' items where at most ' + maxItems + ' were asked for' });
  }
  sending = { id, items, at: 0, fields, listKey };
  sendPart();
};
const guarded = (id, step) => {
  try { step(); } catch (err) {
    sending = undefined;
    parentPort.postMessage({ id, error: String(err && err.message || err) });
  }
};
parentPort.on('message', (message) => {
  if (message.next !== undefined) {
    if (sending !== undefined && sending.id === message.next) guarded(message.next, sendPart);
  } else waiting.push(message);
  while (sending === undefined && waiting.length > 0) {
    const next = waiting.shift();
    guarded(next.id, () => decode(next));
  }
});
`;

/** Thrown when an answer is or inflates past its limit; the client names the endpoint and the limit. */
export class AnswerTooLarge extends Error {
  override readonly name = 'AnswerTooLarge';
  constructor(
    readonly limitBytes: number,
    /** The setting that raises it, when there is one. */
    readonly setting?: SettingName,
  ) {
    super(`answer larger than ${limitBytes} bytes`);
  }
}

export class JsonDecoder {
  private worker: Worker | undefined;
  private nextId = 0;
  /** `parts`: a long list's items received so far (the last part comes as the body). */
  private readonly pending = new Map<number, { resolve: (body: unknown) => void; reject: (err: Error) => void; parts: unknown[] }>();

  /** `maxBytes`: the largest answer decoded; the worker's heap is bounded in proportion (a hostile body cannot take more). */
  constructor(private readonly maxBytes: number) {}

  /**
   * The body's JSON (undefined when it is not JSON). A `list` answer larger
   * than an inline one is decoded in the worker and comes back with only its
   * items' `fields`; any other answer larger than that is refused.
   */
  async decode(bytes: Buffer, gzip: boolean, list: ListShape | undefined): Promise<unknown> {
    // A gzip member ends with its inflated size (mod 2^32): a page that says it is large goes straight to the
    // worker, rather than being inflated here up to the inline limit first (on every page of a refresh). A
    // member that lies is still bounded: inline by INLINE_LIMIT, in the worker by maxBytes.
    const large =
      list !== undefined &&
      (gzip ? bytes.length >= 18 && bytes.readUInt32LE(bytes.length - 4) > INLINE_LIMIT : bytes.length > INLINE_LIMIT);
    const inline = large
      ? TOO_BIG_FOR_INLINE
      : await decodeInline(bytes, gzip, INLINE_LIMIT).catch((err: unknown) => {
          if (err instanceof AnswerTooLarge) return TOO_BIG_FOR_INLINE;
          throw err;
        });
    if (inline !== TOO_BIG_FOR_INLINE) return inline;
    // Only lists are big: an object answer (one VM, one host, a fault) larger than this is not an honest one.
    if (list === undefined) throw new AnswerTooLarge(INLINE_LIMIT);
    const worker = this.start();
    const id = this.nextId++;
    // Moved to the worker, not copied; only a view into a shared (pooled) buffer is copied first.
    const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
    const own = whole ? bytes : Uint8Array.from(bytes);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, parts: [] });
      worker.postMessage({ id, bytes: own.buffer, gzip, maxBytes: this.maxBytes, ...list }, [own.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker !== undefined) await worker.terminate();
  }

  private start(): Worker {
    if (this.worker !== undefined) return this.worker;
    // Parsed JSON of tiny objects costs up to ~50x its size: enough heap for honest answers, a bound for the rest.
    const heapMb = Math.min(4_096, Math.max(256, Math.ceil((16 * this.maxBytes) / 2 ** 20)));
    const worker = new Worker(WORKER_SOURCE, { eval: true, resourceLimits: { maxOldGenerationSizeMb: heapMb } });
    worker.unref(); // never what keeps the process alive
    type Answer = { id: number; part?: unknown[]; body?: unknown; error?: string; tooLarge?: boolean };
    worker.on('message', ({ id, part, body, error, tooLarge }: Answer) => {
      const p = this.pending.get(id);
      if (part !== undefined) {
        // Asked for even when nobody waits any more, so the worker lets go of the list.
        p?.parts.push(...part);
        worker.postMessage({ next: id });
        return;
      }
      if (p === undefined) return;
      this.pending.delete(id);
      if (tooLarge) p.reject(new AnswerTooLarge(this.maxBytes, SETTINGS.engine.maxAnswerBytes.env));
      else if (error !== undefined) p.reject(new ScorerError('engine_protocol', `a malformed answer (${error.slice(0, 120)})`));
      else p.resolve(p.parts.length === 0 ? body : withParts(body, p.parts));
    });
    worker.on('error', (err: Error & { code?: string }) => {
      // Out of heap: the answer decodes into more than the worker may hold. A new worker serves the next one.
      if (err.code === 'ERR_WORKER_OUT_OF_MEMORY')
        this.failAll(new ScorerError('engine_protocol', 'an answer too large to decode (it ran the decoder out of memory)'));
      else this.failAll(new ScorerError('internal', 'JSON decoder failed', { cause: err }));
    });
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = undefined;
      this.failAll(new ScorerError('internal', 'JSON decoder exited'));
    });
    this.worker = worker;
    return worker;
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

const TOO_BIG_FOR_INLINE = Symbol('too big for inline');

/** A list answer's last part with the parts before it in front: `{ [listKey]: items }`. */
function withParts(body: unknown, parts: unknown[]): unknown {
  const [listKey, last] = Object.entries(body as Record<string, unknown[]>)[0]!;
  return { [listKey]: parts.concat(last) };
}

/** The body's JSON, or undefined when it is not JSON (or not valid gzip); AnswerTooLarge past `maxBytes` inflated. */
export async function decodeInline(bytes: Buffer, gzip: boolean, maxBytes: number): Promise<unknown> {
  if (!gzip && bytes.length > maxBytes) throw new AnswerTooLarge(maxBytes);
  const raw = gzip
    ? await new Promise<Buffer | undefined>((resolve, reject) =>
        gunzip(bytes, { maxOutputLength: maxBytes }, (err, out) =>
          (err as { code?: unknown } | null)?.code === 'ERR_BUFFER_TOO_LARGE'
            ? reject(new AnswerTooLarge(maxBytes))
            : resolve(err ? undefined : out),
        ),
      )
    : bytes;
  if (raw === undefined || raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
}
