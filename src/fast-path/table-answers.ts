/**
 * ScoreHosts and ScoreHostsBatch answers as bytes, made from the score
 * tables: table entries (or the ranked body) and entries made for this call
 * alone, copied once into the response. The host holding the scored VM, and
 * hosts the snapshot lacks, are scored for the call.
 */
import type { InventoryInfo } from '../generated/ksmscorer/v1/InventoryInfo';
import type { OsIdentity } from '../ovirt/model';
import { ownHostOf, scoreHost } from '../scoring/score';
import { noSuchVm, type VmNotFound } from '../scoring/service';
import type { ScoringView } from '../scoring/view';
import {
  copyBytes,
  encodeWith,
  errorBound,
  inventoryBody,
  Out,
  type PreparedMessage,
  tag,
  varintSize,
  WIRE_LEN,
  writeError,
  writeInventory,
} from './encode';
import type { IndexedQuery } from './indexed-request';
import { INVENTORY_ROOM, type ListBody, type OsTable } from './os-table';
import { encodeScoreEntry, type SnapshotTables } from './score-tables';

/**
 * One query's `scores` entries, ready to copy: table entries, and those made
 * for this call alone (the VM's own host, hosts the snapshot lacks). Planned
 * first (every entry exists and the size is known), written once into the response.
 */
export class ScoresAnswer {
  constructor(
    readonly table: OsTable,
    /** Bytes of every entry together. */
    readonly size: number,
    private readonly positions: readonly number[] | undefined,
    /** The VM's own host's position, or -1. */
    private readonly scoredAt: number,
    /** That host's entry, scored without the VM. */
    private readonly own: Buffer | undefined,
    /** Entries of the hosts the index lacks, in request order. */
    private readonly others: readonly Buffer[],
    /** Ranked answers with the own host: how many entries of the ranking (its old one included) come before its new one. */
    private readonly before: number,
    /** A remembered host list's entries as one buffer (OsTable.listBody); `own` replaces the entries at `ownAt`. */
    private readonly listBody?: ListBody,
    private readonly ownAt?: readonly number[],
  ) {}

  /**
   * Plans the scores of `query` on `view`: what scoreQuery and
   * scoreCandidates give, as bytes. VmNotFound when the VM is not known.
   */
  static plan(view: ScoringView, tables: SnapshotTables, query: IndexedQuery): ScoresAnswer | VmNotFound {
    let os: OsIdentity;
    let scoredVmId: string | undefined;
    let scoredAt = -1;
    if (query.kind === 'vm') {
      const placed = view.snapshot.vms.get(query.vmId);
      const vm = placed ?? view.vm(query.vmId);
      if (vm === undefined) return noSuchVm(query.vmId);
      os = vm.os;
      scoredVmId = query.vmId;
      // The snapshot host that counts the VM, as the view's candidates decide it.
      const own = ownHostOf(placed);
      if (own !== undefined) scoredAt = tables.index.position(own);
    } else {
      os = query.os;
    }
    const table = tables.table(os);
    const ownScore = () =>
      scoreHost({ hostId: tables.hostIds[scoredAt]!, counts: tables.hosts.get(tables.hostIds[scoredAt]!), containsScoredVm: true }, os);
    const { positions, otherIds, list } = query;
    // A list sent before, of hosts the snapshot has: its answer whole from the table, the VM's own host (if named) spliced in.
    if (list !== undefined && otherIds.length === 0) {
      const listBody = table.listBody(list);
      const { body, at } = listBody;
      if (scoredAt < 0 || !list.positions.includes(scoredAt))
        return new ScoresAnswer(table, body.length, list.positions, -1, undefined, [], -1, listBody);
      const ownAt: number[] = [];
      for (let i = 0; i < list.positions.length; i++) if (list.positions[i] === scoredAt) ownAt.push(i);
      const own = encodeScoreEntry(ownScore());
      const size = body.length + ownAt.length * own.length - ownAt.reduce((n, i) => n + at[i + 1]! - at[i]!, 0);
      return new ScoresAnswer(table, size, list.positions, scoredAt, own, [], -1, listBody, ownAt);
    }
    if (positions === undefined) {
      const { body, at, rankOf } = table.ranked();
      if (scoredAt < 0) return new ScoresAnswer(table, body.length, undefined, -1, undefined, [], 0);
      const score = ownScore();
      const own = encodeScoreEntry(score);
      const old = rankOf[scoredAt]!;
      return new ScoresAnswer(
        table,
        body.length - (at[old + 1]! - at[old]!) + own.length,
        undefined,
        scoredAt,
        own,
        [],
        table.entriesBefore(score),
      );
    }
    let own: Buffer | undefined;
    const others: Buffer[] = [];
    let size = 0;
    let other = 0;
    for (let i = 0; i < positions.length; i++) {
      const p = positions[i]!;
      if (p >= 0 && p !== scoredAt) {
        size += table.entrySize(p);
      } else if (p >= 0) {
        own ??= encodeScoreEntry(ownScore());
        size += own.length;
      } else {
        const entry = encodeScoreEntry(scoreHost(view.candidates([otherIds[other++]!], scoredVmId)[0]!, os));
        others.push(entry);
        size += entry.length;
      }
    }
    return new ScoresAnswer(table, size, positions, scoredAt, own, others, -1);
  }

  /** A ranked answer with nothing moved: the ranked body's buffer, with room after it. */
  wholeRanked(): Buffer | undefined {
    return this.positions === undefined && this.own === undefined ? this.table.ranked().withRoom : undefined;
  }

  /** Writes the entries into `dst` at `pos`; returns the position after them. */
  write(dst: Buffer, pos: number): number {
    const { table, positions, scoredAt, own, listBody } = this;
    if (listBody !== undefined) {
      const { body, at } = listBody;
      let from = 0;
      for (const i of this.ownAt ?? []) {
        pos = copyBytes(body, from, at[i]!, dst, pos);
        pos = copyBytes(own!, 0, own!.length, dst, pos);
        from = at[i + 1]!;
      }
      return copyBytes(body, from, body.length, dst, pos);
    }
    if (positions === undefined) {
      const { body, at, rankOf } = table.ranked();
      if (own === undefined) return copyBytes(body, 0, body.length, dst, pos);
      // The ranking without the own host's old entry, with its new one after `before` entries (the old one among them when it ranked higher).
      const old = rankOf[scoredAt]!;
      const cut = this.before;
      if (old < cut) {
        pos = copyBytes(body, 0, at[old]!, dst, pos);
        pos = copyBytes(body, at[old + 1]!, at[cut]!, dst, pos);
        pos = copyBytes(own, 0, own.length, dst, pos);
        return copyBytes(body, at[cut]!, body.length, dst, pos);
      }
      pos = copyBytes(body, 0, at[cut]!, dst, pos);
      pos = copyBytes(own, 0, own.length, dst, pos);
      pos = copyBytes(body, at[cut]!, at[old]!, dst, pos);
      return copyBytes(body, at[old + 1]!, body.length, dst, pos);
    }
    return table.writeEntries(positions, scoredAt, own, this.others, dst, pos);
  }
}

/** Replies up to this size are written into one buffer, reused (see PreparedMessage); larger ones get their own. */
const SHARED_MAX = 1 << 20;
let shared = Buffer.allocUnsafeSlow(64 * 1024);

function outOf(size: number): Out {
  if (size > SHARED_MAX) return new Out(Buffer.allocUnsafe(size));
  if (size > shared.length) shared = Buffer.allocUnsafeSlow(Math.min(SHARED_MAX, 2 * size));
  return new Out(shared);
}

/** ScoreHostsResponse: scores (1), inventory (2), scored_os (3), written when serialized. */
export class ScoreHostsReply implements PreparedMessage {
  constructor(
    private readonly answer: ScoresAnswer,
    private readonly info: InventoryInfo,
  ) {}

  encode(): Buffer {
    const { answer } = this;
    const inv = inventoryBody(this.info);
    const osField = answer.table.scoredOsField;
    const tail = 1 + varintSize(inv.size) + inv.size;
    const whole = answer.wholeRanked();
    let out: Out;
    if (whole !== undefined && tail <= INVENTORY_ROOM) {
      // A whole ranked body as it is: the rest goes in the room after it, so the body is not copied.
      out = new Out(whole);
      out.pos = answer.size;
    } else {
      out = outOf(answer.size + tail + osField.length);
      out.pos = answer.write(out.buf, 0);
    }
    writeInventory(out, 2, inv);
    out.pos += osField.copy(out.buf, out.pos);
    return out.buf.subarray(0, out.pos);
  }
}

/** A batch item's `error` field (2 in ScoreHostsResult). */
export const errorField = (code: number, message: string): Buffer =>
  encodeWith(errorBound(message), (out) => writeError(out, 2, code, message));

/** ScoreHostsBatchResponse: one ScoreHostsResult (scores and scored_os, or an error field) per item (1), inventory (2), written when serialized. */
export class BatchReply implements PreparedMessage {
  constructor(
    private readonly items: readonly (ScoresAnswer | Buffer)[],
    private readonly info: InventoryInfo,
  ) {}

  encode(): Buffer {
    const inv = inventoryBody(this.info);
    const bodySize = (item: ScoresAnswer | Buffer) =>
      item instanceof ScoresAnswer ? item.size + item.table.scoredOsField.length : item.length;
    let size = 1 + varintSize(inv.size) + inv.size;
    for (const item of this.items) size += 1 + varintSize(bodySize(item)) + bodySize(item);
    const out = outOf(size);
    for (const item of this.items) {
      out.buf[out.pos++] = tag(1, WIRE_LEN);
      out.varint(bodySize(item));
      const tail = item instanceof ScoresAnswer ? ((out.pos = item.write(out.buf, out.pos)), item.table.scoredOsField) : item;
      out.pos += tail.copy(out.buf, out.pos);
    }
    writeInventory(out, 2, inv);
    return out.buf.subarray(0, out.pos);
  }
}
