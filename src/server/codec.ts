/**
 * Hand-written protobuf codecs for the hot messages. Profiling showed
 * protobufjs (fromObject, Writer, utf8) taking about a third of the CPU of a
 * 512-host ScoreHosts; these write the same wire format into one buffer sized
 * up front. Tests check them against protobufjs on random messages.
 * Fields at their default value are left out, as proto3 allows. The score
 * tables (score-tables.ts, table-answers.ts) use the same writers, and their
 * answers write themselves (PreparedMessage).
 */
import type { InventoryInfo } from '../generated/ksmscorer/v1/InventoryInfo';
import type { OperatingSystem } from '../generated/ksmscorer/v1/OperatingSystem';
import type { ScoreHostsBatchRequest__Output } from '../generated/ksmscorer/v1/ScoreHostsBatchRequest';
import type { ScoreHostsRequest__Output } from '../generated/ksmscorer/v1/ScoreHostsRequest';
import type { ScoreHostsResult } from '../generated/ksmscorer/v1/ScoreHostsResult';
import type { HostScore } from '../scoring/score';

export interface ScoreHostsResponseData {
  readonly scores: readonly HostScore[];
  readonly inventory: InventoryInfo;
  readonly scored_os?: OperatingSystem | null;
}

export interface ScoreHostsBatchResponseData {
  readonly results: readonly ScoreHostsResult[];
  readonly inventory: InventoryInfo;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const tag = (field: number, wire: number) => (field << 3) | wire;

export function varintSize(n: number): number {
  if (n < 0) return 10; // negative int32/int64: ten bytes, two's complement
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

export class Out {
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

  /** A length-delimited string; the buffer has room for 3 bytes per UTF-16 unit. */
  writeString(s: string): void {
    this.nested(() => {
      this.pos += this.buf.write(s, this.pos, 'utf8');
    });
  }

  /**
   * Writes a length-delimited body: one byte is reserved for the length and
   * patched once the body is written; a body of 128 bytes or more (rare here)
   * is moved up to make room for a longer length.
   */
  nested(body: () => void): void {
    const at = this.pos++;
    body();
    this.patchLength(at);
  }

  /** Writes the length of the body that starts after the byte reserved at `at`. */
  patchLength(at: number): void {
    const len = this.pos - at - 1;
    if (len < 128) {
      this.buf[at] = len;
      return;
    }
    const extra = varintSize(len) - 1;
    this.buf.copyWithin(at + 1 + extra, at + 1, this.pos);
    this.pos = at;
    this.varint(len);
    this.pos += len;
  }
}

/** Most bytes a HostScore can take: tag and length, id (UTF-8 is at most 3 bytes a UTF-16 unit), double, three varints, bool. */
export const hostScoreBound = (s: HostScore) => 2 + 1 + 5 + 3 * s.host_id.length + 9 + 3 * 6 + 2;

function writeHostScore(out: Out, s: HostScore): void {
  if (s.host_id.length > 0) {
    out.buf[out.pos++] = tag(1, WIRE_LEN);
    const at = out.pos++;
    out.pos += out.buf.write(s.host_id, out.pos, 'utf8');
    out.patchLength(at);
  }
  if (s.score !== 0) {
    out.buf[out.pos++] = tag(2, WIRE_FIXED64);
    out.pos = out.buf.writeDoubleLE(s.score, out.pos);
  }
  if (s.vm_count !== 0) (out.varint(tag(3, WIRE_VARINT)), out.varint(s.vm_count));
  if (s.same_type_count !== 0) (out.varint(tag(4, WIRE_VARINT)), out.varint(s.same_type_count));
  if (s.same_version_count !== 0) (out.varint(tag(5, WIRE_VARINT)), out.varint(s.same_version_count));
  if (s.found) (out.varint(tag(6, WIRE_VARINT)), out.varint(1));
}

/** One entry of a repeated HostScore field: tag, length, body (the length byte is reserved and patched: no closure per host). */
export function writeScoreEntry(out: Out, field: number, s: HostScore): void {
  out.varint(tag(field, WIRE_LEN));
  const at = out.pos++;
  writeHostScore(out, s);
  out.patchLength(at);
}

/** Repeated HostScore field, one pass. */
function writeScores(out: Out, field: number, scores: readonly HostScore[]): void {
  for (const s of scores) writeScoreEntry(out, field, s);
}

function scoresBound(scores: readonly HostScore[]): number {
  let bound = 0;
  for (const s of scores) bound += hostScoreBound(s);
  return bound;
}

export function inventoryBody(info: InventoryInfo): { value: InventoryInfo; size: number; tsSize: number } {
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

export function writeInventory(out: Out, field: number, inv: ReturnType<typeof inventoryBody>): void {
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

/** Most bytes an OperatingSystem field can take: tag and length, two strings with theirs. */
export const osBound = (os: OperatingSystem | null | undefined) => (os ? 2 + 5 + 2 * (1 + 5) + 3 * ((os.type ?? '').length + (os.version ?? '').length) : 0);

export function writeOs(out: Out, field: number, os: OperatingSystem | null | undefined): void {
  if (!os) return;
  out.varint(tag(field, WIRE_LEN));
  out.nested(() => {
    if (os.type) (out.buf[out.pos++] = tag(1, WIRE_LEN), out.writeString(os.type));
    if (os.version) (out.buf[out.pos++] = tag(2, WIRE_LEN), out.writeString(os.version));
  });
}

/** Most bytes an Error field can take: tag and length, code, message. */
export const errorBound = (message: string) => 2 + 5 + 1 + 5 + 3 * message.length + 6;

export function writeError(out: Out, field: number, code: number, message: string): void {
  out.varint(tag(field, WIRE_LEN));
  out.nested(() => {
    if (code !== 0) (out.varint(tag(1, WIRE_VARINT)), out.varint(code));
    if (message !== '') (out.buf[out.pos++] = tag(2, WIRE_LEN), out.writeString(message));
  });
}

/** Bytes of their own for what `write` writes (at most `bound` of them). */
export function encodeWith(bound: number, write: (out: Out) => void): Buffer {
  const out = new Out(Buffer.allocUnsafe(bound));
  write(out);
  return out.buf.subarray(0, out.pos);
}

/**
 * A message that writes its own bytes when grpc-js serializes it. What
 * encode() returns may be written over by the next encode(): grpc-js copies a
 * serializer's result into its frame at once (serializeMessage, grpc-js 1.14),
 * so replies need no buffer of their own each.
 */
export interface PreparedMessage {
  encode(): Buffer;
}

const isPrepared = (res: object): res is PreparedMessage => typeof (res as Partial<PreparedMessage>).encode === 'function';

/** A response, or one that writes itself (the score tables' answers). */
export function encodeScoreHostsResponse(res: ScoreHostsResponseData | PreparedMessage): Buffer {
  if (isPrepared(res)) return res.encode();
  const inv = inventoryBody(res.inventory);
  const out = new Out(Buffer.allocUnsafe(scoresBound(res.scores) + 1 + varintSize(inv.size) + inv.size + osBound(res.scored_os)));
  writeScores(out, 1, res.scores);
  writeInventory(out, 2, inv);
  writeOs(out, 3, res.scored_os);
  return out.buf.subarray(0, out.pos);
}

export function encodeScoreHostsBatchResponse(res: ScoreHostsBatchResponseData | PreparedMessage): Buffer {
  if (isPrepared(res)) return res.encode();
  const inv = inventoryBody(res.inventory);
  let bound = 1 + varintSize(inv.size) + inv.size;
  for (const r of res.results) {
    bound += 1 + 5 + scoresBound((r.scores ?? []) as HostScore[]) + osBound(r.scored_os);
    if (r.error) bound += errorBound(r.error.message ?? '');
  }
  const out = new Out(Buffer.allocUnsafe(bound));
  for (const r of res.results) {
    out.varint(tag(1, WIRE_LEN));
    out.nested(() => {
      writeScores(out, 1, (r.scores ?? []) as HostScore[]);
      if (r.error) writeError(out, 2, r.error.code ?? 0, r.error.message ?? '');
      writeOs(out, 3, r.scored_os);
    });
  }
  writeInventory(out, 2, inv);
  return out.buf.subarray(0, out.pos);
}

/**
 * Hand-written decoders for the two requests, the same shape proto-loader
 * gives (keepCase, oneofs, defaults). Unknown fields are skipped. A malformed
 * message is flagged, not thrown: thrown, grpc-js would answer INTERNAL for
 * what is the caller's mistake.
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
    // Tags and the lengths of ids are one byte.
    const first = this.buf[this.pos];
    if (first !== undefined && first < 128 && this.pos < this.end) {
      this.pos++;
      return first;
    }
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

  /** Skips an unknown field of `wire` type (a group with `field`: up to its end tag), as protobuf runtimes do. */
  skip(wire: number, field = 0, depth = 0): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else if (wire === 3) {
      if (depth >= MAX_GROUP_DEPTH) throw new RangeError('groups nested too deep');
      for (;;) {
        const key = this.varint();
        if ((key & 7) === 4) {
          if (Math.floor(key / 8) !== field) throw new RangeError('mismatched end group');
          break;
        }
        this.skip(key & 7, Math.floor(key / 8), depth + 1);
      }
    } else throw new RangeError(`unsupported wire type ${wire}`);
    if (this.pos > this.end) throw new RangeError('truncated field');
  }
}

const MAX_GROUP_DEPTH = 32;

/** The key of a host_ids entry: field 3, length-delimited. */
const HOST_ID_KEY = tag(3, WIRE_LEN);

/**
 * A ScoreHostsRequest as read off the wire, in proto-loader's shape, except
 * that host_ids stay where they are in the request's bytes until asked for:
 * the score tables look ids up by their bytes, so a known id never becomes a
 * string, and nothing is kept per id.
 */
export class WireScoreRequest implements ScoreHostsRequest__Output {
  vm: 'vm_id' | 'os' | undefined = undefined;
  vm_id: string | undefined = undefined;
  os: { type: string; version: string } | undefined = undefined;
  /** Why the bytes did not decode; undefined: they did (and every walk over them succeeds). */
  malformed: string | undefined = undefined;
  hostIdCount = 0;
  /**
   * Where the first host_ids field begins (its key, so its length is compared too) and the last
   * one's bytes end: two requests whose bytes there are equal name the same ids, parsed alike.
   */
  hostIdsStart = 0;
  lastIdEnd = 0;
  private strings: string[] | undefined;
  private dataView: DataView | undefined;

  constructor(
    readonly bytes: Buffer,
    readonly start: number,
    readonly end: number,
  ) {}

  /** The request's bytes as a DataView, at the same offsets. */
  get view(): DataView {
    return (this.dataView ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength));
  }

  /** Calls `each` with each host id's bytes, `bytes[start, end)`, and its index, in order. */
  forEachHostId(each: (start: number, end: number, i: number) => void): void {
    const input = new In(this.bytes, this.start, this.end);
    for (let i = 0; input.pos < input.end; ) {
      const key = input.varint();
      if (key === HOST_ID_KEY) {
        const len = input.varint();
        each(input.pos, input.pos + len, i++);
        input.pos += len;
      } else {
        input.skip(key & 7, Math.floor(key / 8));
      }
    }
  }

  /** The host ids as text (UTF-8, as proto-loader decodes them). */
  get host_ids(): string[] {
    if (this.strings === undefined) {
      const strings = new Array<string>(this.hostIdCount);
      if (this.malformed === undefined) this.forEachHostId((start, end, i) => (strings[i] = this.bytes.toString('utf8', start, end)));
      this.strings = strings;
    }
    return this.strings;
  }
}

function readRequest(input: In): WireScoreRequest {
  const req = new WireScoreRequest(input.buf, input.pos, input.end);
  while (input.pos < input.end) {
    const keyStart = input.pos;
    const key = input.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1 && wire === WIRE_LEN) {
      req.vm_id = input.string();
      req.os = undefined;
      req.vm = 'vm_id';
    } else if (field === 2 && wire === WIRE_LEN) {
      const [start, end] = input.bytes();
      const os = new In(input.buf, start, end);
      const value = { type: '', version: '' };
      while (os.pos < os.end) {
        const k = os.varint();
        if (k === tag(1, WIRE_LEN)) value.type = os.string();
        else if (k === tag(2, WIRE_LEN)) value.version = os.string();
        else os.skip(k & 7, Math.floor(k / 8));
      }
      req.os = value;
      req.vm_id = undefined;
      req.vm = 'os';
    } else if (key === HOST_ID_KEY) {
      const len = input.varint();
      const start = input.pos;
      if (start + len > input.end) throw new RangeError('truncated field');
      input.pos += len;
      if (req.hostIdCount++ === 0) req.hostIdsStart = keyStart;
      req.lastIdEnd = input.pos;
    } else {
      input.skip(wire, field);
    }
  }
  return req;
}

/**
 * A request as decoded: `malformed` when it did not decode (the handler answers INVALID_ARGUMENT
 * with it as the reason); `extraHostIds` / `extraRequests`: how many were only counted, not built.
 */
export type DecodedRequest<T> = T & { readonly malformed?: string; readonly extraHostIds?: number; readonly extraRequests?: number };

function malformed(buf: Buffer, err: unknown): WireScoreRequest {
  const req = new WireScoreRequest(buf, 0, 0);
  req.malformed = (err as Error).message;
  return req;
}

export function decodeScoreHostsRequest(buf: Buffer): WireScoreRequest {
  try {
    return readRequest(new In(buf, 0, buf.length));
  } catch (err) {
    return malformed(buf, err);
  }
}

/** A ScoreHostsBatchRequest as read off the wire: its items are WireScoreRequests. */
export interface WireBatchRequest extends ScoreHostsBatchRequest__Output {
  readonly requests: WireScoreRequest[];
  readonly malformed?: string;
  /** Items past `maxBatchRequests` + 1: checked for their framing and counted, never built. */
  readonly extraRequests?: number;
}

/**
 * How many items of a batch are built into objects: past it the rest is only
 * counted (a 4 MiB message of empty items would otherwise become millions of
 * objects before validation refuses it). Host ids are never built (WireScoreRequest).
 */
export interface DecodeLimits {
  readonly maxBatchRequests: number;
}

export function decodeScoreHostsBatchRequest(buf: Buffer, limits: DecodeLimits = { maxBatchRequests: Infinity }): WireBatchRequest {
  const input = new In(buf, 0, buf.length);
  const requests: WireScoreRequest[] = [];
  let extraRequests = 0;
  try {
    while (input.pos < input.end) {
      const key = input.varint();
      if (key === tag(1, WIRE_LEN)) {
        const [start, end] = input.bytes();
        if (requests.length > limits.maxBatchRequests) extraRequests++;
        else requests.push(readRequest(new In(buf, start, end)));
      } else {
        input.skip(key & 7, Math.floor(key / 8));
      }
    }
  } catch (err) {
    return { requests: [], malformed: (err as Error).message };
  }
  return extraRequests > 0 ? { requests, extraRequests } : { requests };
}

/** A generated decoder that flags a malformed message, as the hand-written ones do, instead of throwing. */
export function flagMalformed<T>(decode: (buf: Buffer) => T): (buf: Buffer) => T | { malformed: string } {
  return (buf) => {
    try {
      return decode(buf);
    } catch (err) {
      return { malformed: (err as Error).message };
    }
  };
}
