/**
 * Decodes large engine answers off the main thread. A page of 500 VMs is
 * about 2 MB of JSON (links and actions make up most of it); gunzip and
 * JSON.parse of it block an event loop for ~6 ms plus the GC of the strings.
 * A worker does both and keeps only the fields the inventory reads, so the
 * main thread receives a few small objects and scoring calls are not held up.
 * Typed parsing (and its errors) stays on the main thread, in parse.ts.
 */
import { Worker } from 'node:worker_threads';
import { gunzip } from 'node:zlib';
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
export const HOST_FIELDS: Projection = { id: true, name: true };

/** Bodies smaller than this are decoded inline: a worker round trip would cost more. */
const INLINE_LIMIT = 64 * 1024;

// Plain JS so it runs from dist/ and under the test runner alike; generic, so it stays this small.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { gunzipSync } = require('node:zlib');
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
function project(value, spec) {
  if (!isObject(value)) return value;
  const out = {};
  for (const key of Object.keys(spec)) {
    if (key in value) out[key] = spec[key] === true ? value[key] : project(value[key], spec[key]);
  }
  return out;
}
parentPort.on('message', ({ id, bytes, gzip, maxBytes, listKey, fields }) => {
  try {
    const buf = Buffer.from(bytes);
    let raw;
    try { raw = gzip ? gunzipSync(buf, { maxOutputLength: maxBytes }) : buf; } catch (err) {
      parentPort.postMessage({ id, tooLarge: err && err.code === 'ERR_BUFFER_TOO_LARGE', body: undefined });
      return;
    }
    let body;
    try { body = JSON.parse(raw.toString('utf8')); } catch { parentPort.postMessage({ id, body: undefined }); return; }
    // Only the list's items cross back, projected: never a whole (possibly deep) answer.
    if (!isObject(body)) body = undefined;
    else if (listKey in body) {
      const list = body[listKey];
      body = { [listKey]: Array.isArray(list) ? list.map((item) => project(item, fields)) : project(list, fields) };
    } else body = {};
    parentPort.postMessage({ id, body });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) });
  }
});
`;

export class JsonDecoder {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (body: unknown) => void; reject: (err: Error) => void }>();

  /**
   * The body's JSON (undefined when it is not JSON). For a list under
   * `listKey`, each item keeps only `fields`.
   */
  async decode(bytes: Buffer, gzip: boolean, maxBytes: number, listKey: string, fields: Projection): Promise<unknown> {
    if (bytes.length < INLINE_LIMIT / (gzip ? 8 : 1)) return decodeInline(bytes, gzip, maxBytes);
    const worker = this.start();
    const id = this.nextId++;
    // Copy into a buffer of its own so it can be moved to the worker without copying again.
    const own = new Uint8Array(bytes.length);
    own.set(bytes);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, bytes: own.buffer, gzip, maxBytes, listKey, fields }, [own.buffer]);
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker !== undefined) await worker.terminate();
  }

  private start(): Worker {
    if (this.worker !== undefined) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref(); // never what keeps the process alive
    worker.on('message', ({ id, body, error, tooLarge }: { id: number; body?: unknown; error?: string; tooLarge?: boolean }) => {
      const p = this.pending.get(id);
      if (p === undefined) return;
      this.pending.delete(id);
      if (tooLarge) p.reject(new AnswerTooLarge());
      else if (error !== undefined) p.reject(new ScorerError('engine_protocol', 'a malformed answer (it could not be decoded)', { cause: new Error(error) }));
      else p.resolve(body);
    });
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = undefined;
      this.failAll(new Error('decoder worker exited'));
    });
    this.worker = worker;
    return worker;
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(new ScorerError('internal', 'JSON decoder failed', { cause: err }));
    this.pending.clear();
  }
}

/** Thrown when an answer inflates past its limit; the client names the endpoint and the limit. */
export class AnswerTooLarge extends Error {
  override readonly name = 'AnswerTooLarge';
}

/** The body's JSON, or undefined when it is not JSON (or not valid gzip); AnswerTooLarge past `maxBytes` inflated. */
export async function decodeInline(bytes: Buffer, gzip: boolean, maxBytes: number): Promise<unknown> {
  const raw = gzip
    ? await new Promise<Buffer | undefined>((resolve, reject) =>
        gunzip(bytes, { maxOutputLength: maxBytes }, (err, out) =>
          (err as NodeJS.ErrnoException | null)?.code === 'ERR_BUFFER_TOO_LARGE' ? reject(new AnswerTooLarge()) : resolve(err ? undefined : out),
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
