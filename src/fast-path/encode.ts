/**
 * Hand-written protobuf encoders for the hot messages (decode.ts reads the
 * requests). Profiling showed protobufjs (fromObject, Writer, utf8) taking about a third of the CPU of a
 * 512-host ScoreHosts; these write the same wire format into one buffer sized
 * up front. Tests check them against protobufjs on random messages.
 * Fields at their default value are left out, as proto3 allows. The score
 * tables (score-tables.ts, table-answers.ts) use the same writers, and their
 * answers write themselves (PreparedMessage).
 */
import type { InventoryInfo } from '../generated/ksmscorer/v1/InventoryInfo';
import type { OperatingSystem } from '../generated/ksmscorer/v1/OperatingSystem';
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
  if (s.vm_count !== 0) {
    out.varint(tag(3, WIRE_VARINT));
    out.varint(s.vm_count);
  }
  if (s.same_type_count !== 0) {
    out.varint(tag(4, WIRE_VARINT));
    out.varint(s.same_type_count);
  }
  if (s.same_version_count !== 0) {
    out.varint(tag(5, WIRE_VARINT));
    out.varint(s.same_version_count);
  }
  if (s.found) {
    out.varint(tag(6, WIRE_VARINT));
    out.varint(1);
  }
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
    if (seconds !== 0) {
      out.varint(tag(1, WIRE_VARINT));
      out.varint(seconds);
    }
    if (nanos !== 0) {
      out.varint(tag(2, WIRE_VARINT));
      out.varint(nanos);
    }
  }
  if (info.stale) {
    out.varint(tag(2, WIRE_VARINT));
    out.varint(1);
  }
  const generation = Number(info.generation ?? 0);
  if (generation !== 0) {
    out.varint(tag(3, WIRE_VARINT));
    out.varint(generation);
  }
  if (info.host_count) {
    out.varint(tag(4, WIRE_VARINT));
    out.varint(info.host_count);
  }
  if (info.vm_count) {
    out.varint(tag(5, WIRE_VARINT));
    out.varint(info.vm_count);
  }
}

/** Most bytes an OperatingSystem field can take: tag and length, two strings with theirs. */
export const osBound = (os: OperatingSystem | null | undefined) =>
  os ? 2 + 5 + 2 * (1 + 5) + 3 * ((os.type ?? '').length + (os.version ?? '').length) : 0;

export function writeOs(out: Out, field: number, os: OperatingSystem | null | undefined): void {
  if (!os) return;
  out.varint(tag(field, WIRE_LEN));
  out.nested(() => {
    if (os.type) {
      out.buf[out.pos++] = tag(1, WIRE_LEN);
      out.writeString(os.type);
    }
    if (os.version) {
      out.buf[out.pos++] = tag(2, WIRE_LEN);
      out.writeString(os.version);
    }
  });
}

/** Most bytes an Error field can take: tag and length, code, message. */
export const errorBound = (message: string) => 2 + 5 + 1 + 5 + 3 * message.length + 6;

export function writeError(out: Out, field: number, code: number, message: string): void {
  out.varint(tag(field, WIRE_LEN));
  out.nested(() => {
    if (code !== 0) {
      out.varint(tag(1, WIRE_VARINT));
      out.varint(code);
    }
    if (message !== '') {
      out.buf[out.pos++] = tag(2, WIRE_LEN);
      out.writeString(message);
    }
  });
}

/** Ranges shorter than this are copied byte by byte: cheaper than Buffer#copy's view and call. */
const SHORT_COPY = 64;

/** Copies `src[start, end)` into `dst` at `pos`; returns the position after it. */
export function copyBytes(src: Buffer, start: number, end: number, dst: Buffer, pos: number): number {
  if (end - start > SHORT_COPY) return pos + src.copy(dst, pos, start, end);
  for (let k = start; k < end; k++) dst[pos++] = src[k]!;
  return pos;
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
