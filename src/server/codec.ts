/**
 * Hand-written protobuf codecs for the hot messages. Profiling showed
 * protobufjs (fromObject, Writer, utf8) taking about a third of the CPU of a
 * 512-host ScoreHosts; these write the same wire format into one buffer sized
 * up front. Tests check them against protobufjs on random messages.
 * Fields at their default value are left out, as proto3 allows.
 */
import type { Error as ErrorMessage } from '../generated/ksmscorer/v1/Error';
import type { InventoryInfo } from '../generated/ksmscorer/v1/InventoryInfo';
import type { ScoreHostsBatchRequest__Output } from '../generated/ksmscorer/v1/ScoreHostsBatchRequest';
import type { ScoreHostsRequest__Output } from '../generated/ksmscorer/v1/ScoreHostsRequest';
import type { ScoreHostsResult } from '../generated/ksmscorer/v1/ScoreHostsResult';
import type { HostScore } from '../scoring/score';

export interface ScoreHostsResponseData {
  readonly scores: readonly HostScore[];
  readonly inventory: InventoryInfo;
}

export interface ScoreHostsBatchResponseData {
  readonly results: readonly ScoreHostsResult[];
  readonly inventory: InventoryInfo;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const tag = (field: number, wire: number) => (field << 3) | wire;

function varintSize(n: number): number {
  if (n < 0) return 10; // negative int32/int64: ten bytes, two's complement
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

class Out {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  varint(n: number): void {
    if (n < 0) {
      // int32 negatives are sign-extended to 64 bits.
      let v = BigInt.asUintN(64, BigInt(n));
      while (v >= 128n) {
        this.buf[this.pos++] = Number(v & 127n) | 128;
        v >>= 7n;
      }
      this.buf[this.pos++] = Number(v);
      return;
    }
    while (n >= 128) {
      this.buf[this.pos++] = (n % 128) | 128;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  string(field: number, s: string, bytes: number): void {
    this.varint(tag(field, WIRE_LEN));
    this.varint(bytes);
    if (bytes === s.length) {
      // ASCII (host ids are UUIDs): a latin1 copy, no UTF-8 transcoding.
      this.pos += this.buf.write(s, this.pos, bytes, 'latin1');
    } else {
      this.pos += this.buf.write(s, this.pos, bytes, 'utf8');
    }
  }
}

interface Sized<T> {
  readonly value: T;
  readonly size: number;
}

/** UTF-8 byte length; a JS loop for short ASCII strings (the usual host id), else Buffer.byteLength. */
function utf8Length(s: string): number {
  if (s.length > 64) return Buffer.byteLength(s, 'utf8');
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 128) return Buffer.byteLength(s, 'utf8');
  return s.length;
}

function hostScoreSize(s: HostScore, idBytes: number): number {
  let size = 0;
  if (idBytes > 0) size += 1 + varintSize(idBytes) + idBytes;
  if (s.score !== 0) size += 9;
  if (s.vm_count !== 0) size += 1 + varintSize(s.vm_count);
  if (s.same_type_count !== 0) size += 1 + varintSize(s.same_type_count);
  if (s.same_version_count !== 0) size += 1 + varintSize(s.same_version_count);
  if (s.found) size += 2;
  return size;
}

function writeHostScore(out: Out, s: HostScore, idBytes: number): void {
  if (idBytes > 0) out.string(1, s.host_id, idBytes);
  if (s.score !== 0) {
    out.buf[out.pos++] = tag(2, WIRE_FIXED64);
    out.pos = out.buf.writeDoubleLE(s.score, out.pos);
  }
  if (s.vm_count !== 0) (out.varint(tag(3, WIRE_VARINT)), out.varint(s.vm_count));
  if (s.same_type_count !== 0) (out.varint(tag(4, WIRE_VARINT)), out.varint(s.same_type_count));
  if (s.same_version_count !== 0) (out.varint(tag(5, WIRE_VARINT)), out.varint(s.same_version_count));
  if (s.found) (out.varint(tag(6, WIRE_VARINT)), out.varint(1));
}

/** Sizes of each HostScore body, computed once and used for both passes. */
function sizeScores(scores: readonly HostScore[]): { ids: Int32Array; bodies: Int32Array; total: number } {
  const ids = new Int32Array(scores.length);
  const bodies = new Int32Array(scores.length);
  let total = 0;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    ids[i] = utf8Length(s.host_id);
    const body = hostScoreSize(s, ids[i]!);
    bodies[i] = body;
    total += 1 + varintSize(body) + body;
  }
  return { ids, bodies, total };
}

function writeScores(out: Out, field: number, scores: readonly HostScore[], sizes: { ids: Int32Array; bodies: Int32Array }): void {
  for (let i = 0; i < scores.length; i++) {
    out.varint(tag(field, WIRE_LEN));
    out.varint(sizes.bodies[i]!);
    writeHostScore(out, scores[i]!, sizes.ids[i]!);
  }
}

function inventoryBody(info: InventoryInfo): Sized<InventoryInfo> & { tsSize: number } {
  const seconds = Number(info.refreshed_at?.seconds ?? 0);
  const nanos = info.refreshed_at?.nanos ?? 0;
  const tsSize = (seconds !== 0 ? 1 + varintSize(seconds) : 0) + (nanos !== 0 ? 1 + varintSize(nanos) : 0);
  const generation = Number(info.generation ?? 0);
  let size = info.refreshed_at ? 1 + varintSize(tsSize) + tsSize : 0;
  if (info.stale) size += 2;
  if (generation !== 0) size += 1 + varintSize(generation);
  if (info.host_count) size += 1 + varintSize(info.host_count);
  if (info.vm_count) size += 1 + varintSize(info.vm_count);
  return { value: info, size, tsSize };
}

function writeInventory(out: Out, field: number, inv: ReturnType<typeof inventoryBody>): void {
  const info = inv.value;
  out.varint(tag(field, WIRE_LEN));
  out.varint(inv.size);
  if (info.refreshed_at) {
    const seconds = Number(info.refreshed_at.seconds ?? 0);
    const nanos = info.refreshed_at.nanos ?? 0;
    out.varint(tag(1, WIRE_LEN));
    out.varint(inv.tsSize);
    if (seconds !== 0) (out.varint(tag(1, WIRE_VARINT)), out.varint(seconds));
    if (nanos !== 0) (out.varint(tag(2, WIRE_VARINT)), out.varint(nanos));
  }
  if (info.stale) (out.varint(tag(2, WIRE_VARINT)), out.varint(1));
  const generation = Number(info.generation ?? 0);
  if (generation !== 0) (out.varint(tag(3, WIRE_VARINT)), out.varint(generation));
  if (info.host_count) (out.varint(tag(4, WIRE_VARINT)), out.varint(info.host_count));
  if (info.vm_count) (out.varint(tag(5, WIRE_VARINT)), out.varint(info.vm_count));
}

export function encodeScoreHostsResponse(res: ScoreHostsResponseData): Buffer {
  const sizes = sizeScores(res.scores);
  const inv = inventoryBody(res.inventory);
  const out = new Out(Buffer.allocUnsafe(sizes.total + 1 + varintSize(inv.size) + inv.size));
  writeScores(out, 1, res.scores, sizes);
  writeInventory(out, 2, inv);
  return out.buf;
}

export function encodeScoreHostsBatchResponse(res: ScoreHostsBatchResponseData): Buffer {
  const items = res.results.map((r) => {
    const scores = (r.scores ?? []) as HostScore[];
    const sizes = sizeScores(scores);
    const error = r.error ? errorBody(r.error) : undefined;
    const size = sizes.total + (error ? 1 + varintSize(error.size) + error.size : 0);
    return { scores, sizes, error, size };
  });
  const inv = inventoryBody(res.inventory);
  let total = 1 + varintSize(inv.size) + inv.size;
  for (const item of items) total += 1 + varintSize(item.size) + item.size;
  const out = new Out(Buffer.allocUnsafe(total));
  for (const item of items) {
    out.varint(tag(1, WIRE_LEN));
    out.varint(item.size);
    writeScores(out, 1, item.scores, item.sizes);
    if (item.error) {
      out.varint(tag(2, WIRE_LEN));
      out.varint(item.error.size);
      if (item.error.code) (out.varint(tag(1, WIRE_VARINT)), out.varint(item.error.code));
      if (item.error.messageBytes > 0) out.string(2, item.error.message, item.error.messageBytes);
    }
  }
  writeInventory(out, 2, inv);
  return out.buf;
}

function errorBody(e: ErrorMessage): { code: number; message: string; messageBytes: number; size: number } {
  const code = e.code ?? 0;
  const message = e.message ?? '';
  const messageBytes = Buffer.byteLength(message, 'utf8');
  const size = (code !== 0 ? 1 + varintSize(code) : 0) + (messageBytes > 0 ? 1 + varintSize(messageBytes) + messageBytes : 0);
  return { code, message, messageBytes, size };
}

/**
 * Hand-written decoders for the two requests, the same shape proto-loader
 * gives (keepCase, oneofs, defaults). Unknown fields are skipped; a malformed
 * message throws, which grpc-js answers as it does for protobufjs.
 */

class In {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  varint(): number {
    let result = 0;
    let shift = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new RangeError('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 127) * shift;
      if (b < 128) return result;
      shift *= 128;
    }
    throw new RangeError('varint too long');
  }

  /** Start and end of a length-delimited field's bytes. */
  bytes(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (start + len > this.end) throw new RangeError('truncated field');
    this.pos += len;
    return [start, this.pos];
  }

  string(): string {
    const [start, end] = this.bytes();
    return this.buf.toString('utf8', start, end);
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new RangeError(`unsupported wire type ${wire}`);
    if (this.pos > this.end) throw new RangeError('truncated field');
  }
}

function readRequest(input: In): ScoreHostsRequest__Output {
  const req: { vm_id?: string; os?: { type: string; version: string } | null; host_ids: string[]; vm?: 'vm_id' | 'os' } = { host_ids: [] };
  while (input.pos < input.end) {
    const key = input.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1 && wire === WIRE_LEN) {
      req.vm_id = input.string();
      delete req.os;
      req.vm = 'vm_id';
    } else if (field === 2 && wire === WIRE_LEN) {
      const [start, end] = input.bytes();
      const os = new In(input.buf, start, end);
      const value = { type: '', version: '' };
      while (os.pos < os.end) {
        const k = os.varint();
        if (k === tag(1, WIRE_LEN)) value.type = os.string();
        else if (k === tag(2, WIRE_LEN)) value.version = os.string();
        else os.skip(k & 7);
      }
      req.os = value;
      delete req.vm_id;
      req.vm = 'os';
    } else if (field === 3 && wire === WIRE_LEN) {
      req.host_ids.push(input.string());
    } else {
      input.skip(wire);
    }
  }
  return req as ScoreHostsRequest__Output;
}

export function decodeScoreHostsRequest(buf: Buffer): ScoreHostsRequest__Output {
  return readRequest(new In(buf, 0, buf.length));
}

export function decodeScoreHostsBatchRequest(buf: Buffer): ScoreHostsBatchRequest__Output {
  const input = new In(buf, 0, buf.length);
  const requests: ScoreHostsRequest__Output[] = [];
  while (input.pos < input.end) {
    const key = input.varint();
    if (key === tag(1, WIRE_LEN)) {
      const [start, end] = input.bytes();
      requests.push(readRequest(new In(buf, start, end)));
    } else {
      input.skip(key & 7);
    }
  }
  return { requests };
}
