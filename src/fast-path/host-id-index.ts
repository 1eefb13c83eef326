/**
 * Host id -> position in a snapshot's host list, looked up straight from a
 * request's bytes. Only ids in canonical form (lower-case UUIDs, as the engine
 * parser keeps them) are found by bytes, so a hit proves the id is a valid,
 * known one: it is never turned into a string, checked by a regex or hashed by V8.
 */

/** A UUID in text: 36 bytes, read as nine 32-bit words. */
const ID_BYTES = 36;
const WORDS = ID_BYTES / 4;
const CANONICAL = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SEED = 0x811c9dc5;
const PRIME = 0x01000193;

const charWord = (s: string, p: number) =>
  s.charCodeAt(p) | (s.charCodeAt(p + 1) << 8) | (s.charCodeAt(p + 2) << 16) | (s.charCodeAt(p + 3) << 24);

/**
 * A 36-character id hashes by its first and last eight characters: what
 * varies in random (v4), time-based (v1) and sequential ids alike; equality is
 * checked on all nine words anyway.
 */
function hashWords(w0: number, w1: number, w7: number, w8: number): number {
  const h = Math.imul(Math.imul(Math.imul(Math.imul(SEED ^ w0, PRIME) ^ w1, PRIME) ^ w7, PRIME) ^ w8, PRIME);
  return h ^ (h >>> 15); // an int32 (no heap number); slots take it `& mask`
}

/** The hash `find` gives a canonical id's bytes, for any string (other lengths: every code unit). */
function hashString(s: string): number {
  if (s.length === ID_BYTES) return hashWords(charWord(s, 0), charWord(s, 4), charWord(s, 28), charWord(s, 32));
  let h = SEED;
  for (let p = 0; p < s.length; p++) h = Math.imul(h ^ s.charCodeAt(p), PRIME);
  return h ^ (h >>> 15);
}

export class HostIdIndex {
  /** Open addressing, linear probing: a host position, or -1 for an empty slot. */
  private readonly slots: Int32Array;
  private readonly mask: number;
  /** Each canonical id as nine words; zero for the others, which `find` never matches. */
  private readonly words: Int32Array;
  private readonly canonical: Uint8Array;
  /** Per position, the pass (one request's ids) that last saw it: a request's repeated hosts are dropped without a Set. */
  private readonly seenIn: Int32Array;
  private pass = 0;

  constructor(readonly hostIds: readonly string[]) {
    let size = 16;
    while (size < 2 * hostIds.length) size *= 2;
    this.slots = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    this.words = new Int32Array(WORDS * hostIds.length);
    this.canonical = new Uint8Array(hostIds.length);
    this.seenIn = new Int32Array(hostIds.length);
    hostIds.forEach((id, p) => {
      if (CANONICAL.test(id)) {
        this.canonical[p] = 1;
        for (let k = 0; k < WORDS; k++) this.words[WORDS * p + k] = charWord(id, 4 * k);
      }
      let i = hashString(id) & this.mask;
      while (this.slots[i] !== -1) i = (i + 1) & this.mask;
      this.slots[i] = p;
    });
  }

  /** Bytes held, for the memory report. */
  get byteSize(): number {
    return this.slots.byteLength + this.words.byteLength + this.canonical.byteLength + this.seenIn.byteLength;
  }

  /** Starts a pass over one request's ids: firstInPass(p, pass) is then true once per position. */
  newPass(): number {
    if (this.pass === 0x7fffffff) {
      this.seenIn.fill(0);
      this.pass = 0;
    }
    return ++this.pass;
  }

  firstInPass(p: number, pass: number): boolean {
    if (this.seenIn[p] === pass) return false;
    this.seenIn[p] = pass;
    return true;
  }

  /**
   * Position of the host whose canonical id is the bytes [start, end) of
   * `view`, or -1 (unknown, or not in canonical form). A DataView reads a
   * word in one load where bytes take four.
   */
  find(view: DataView, start: number, end: number): number {
    if (end - start !== ID_BYTES) return -1;
    const w0 = view.getInt32(start, true);
    const w1 = view.getInt32(start + 4, true);
    const w7 = view.getInt32(start + 28, true);
    const w8 = view.getInt32(start + 32, true);
    const { slots, mask, words, canonical } = this;
    for (let i = hashWords(w0, w1, w7, w8) & mask; ; i = (i + 1) & mask) {
      const p = slots[i]!;
      if (p === -1) return -1;
      const at = WORDS * p;
      if (
        words[at] === w0 &&
        words[at + 8] === w8 &&
        words[at + 1] === w1 &&
        words[at + 7] === w7 &&
        canonical[p] === 1 &&
        words[at + 2] === view.getInt32(start + 8, true) &&
        words[at + 3] === view.getInt32(start + 12, true) &&
        words[at + 4] === view.getInt32(start + 16, true) &&
        words[at + 5] === view.getInt32(start + 20, true) &&
        words[at + 6] === view.getInt32(start + 24, true)
      ) {
        return p;
      }
    }
  }

  /** Position of the host with id `id` (any form the snapshot holds), or -1. */
  position(id: string): number {
    for (let i = hashString(id) & this.mask; ; i = (i + 1) & this.mask) {
      const p = this.slots[i]!;
      if (p === -1 || this.hostIds[p] === id) return p;
    }
  }

  /** Whether this index serves `hostIds` too: the same ids in the same order (an events poll rarely changes hosts). */
  covers(hostIds: readonly string[]): boolean {
    if (hostIds === this.hostIds) return true;
    if (hostIds.length !== this.hostIds.length) return false;
    for (let p = 0; p < hostIds.length; p++) if (hostIds[p] !== this.hostIds[p]) return false;
    return true;
  }
}
