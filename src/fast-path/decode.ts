/**
 * Hand-written decoders for the two hot requests, the same shape proto-loader
 * gives (keepCase, oneofs, defaults). Unknown fields are skipped. A malformed
 * message is flagged, not thrown: thrown, grpc-js would answer INTERNAL for
 * what is the caller's mistake. Tests check them against protobufjs on random messages.
 */
import type { ScoreHostsBatchRequest__Output } from '../generated/ksmscorer/v1/ScoreHostsBatchRequest';
import type { ScoreHostsRequest__Output } from '../generated/ksmscorer/v1/ScoreHostsRequest';
import { tag, WIRE_LEN } from './encode';

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
    for (let i = 0; input.pos < input.end;) {
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
      // oxlint-disable-next-line unicorn/no-new-array -- presized, then filled by index
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

/**
 * A generated decoder that flags a malformed message, as the hand-written ones do, instead of
 * throwing. The wire format is checked first: protobufjs 7 (proto-loader's) reads a string whose
 * length runs past the message as the bytes that are there, so a request cut short was answered.
 */
export function flagMalformed<T>(decode: (buf: Buffer) => T): (buf: Buffer) => T | { malformed: string } {
  return (buf) => {
    try {
      checkWire(buf);
      return decode(buf);
    } catch (err) {
      return { malformed: (err as Error).message };
    }
  };
}

/** Throws unless every field of `buf` (tags, varints, lengths, groups) lies whole inside it. */
function checkWire(buf: Buffer): void {
  const input = new In(buf, 0, buf.length);
  while (input.pos < input.end) {
    const key = input.varint();
    input.skip(key & 7, Math.floor(key / 8));
  }
}
