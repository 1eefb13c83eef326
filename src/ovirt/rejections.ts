/**
 * Records the engine sent that the inventory cannot use: BadRecord (one
 * record and why), RecordRejections (a sync's tally of them, for one log
 * line and the metrics) and parseEach (a list without its bad records).
 */
import { ScorerError } from '../errors';

/** A short, printable description of a value from the engine: never the value itself when it is big or nested. */
export function preview(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

/** The kinds of record the inventory reads: the `kind` label of ksm_scorer_engine_records_rejected_total. */
export type RecordKind = 'host' | 'cluster' | 'vm' | 'event';

/**
 * Why a record was left out (or, for `duplicate`, used once): a closed set, the
 * `reason` label of ksm_scorer_engine_records_rejected_total.
 */
export type RejectReason =
  | 'not_an_object' // not a JSON object
  | 'no_id' // no id at all
  | 'bad_id' // an id that is not a UUID (an event id that is not an integer)
  | 'bad_reference' // a reference (a VM's host.id, an event's vm.id or host.id) that is not a UUID
  | 'bad_field' // a field out of bounds or of the wrong type (an OS name of 300 characters, ksm.enabled "yes")
  | 'duplicate'; // listed twice: used once, where it was listed last

/** A record the inventory cannot use, and why; an engine_protocol error where one record was the whole answer. */
export class BadRecord extends ScorerError {
  constructor(
    readonly kind: RecordKind,
    readonly reason: RejectReason,
    /** The record's id when it has a usable one, else what stood there as sent (up to 1 KiB): for the log's examples. */
    readonly recordId: string,
    message: string,
    /** `recordId` is what the engine sent, not an id: shown only redacted, shortened and quoted (RecordRejections). */
    readonly rawId = false,
  ) {
    super('engine_protocol', message);
  }
}

/** A single record the engine answered but the inventory cannot use: as good as not there (a full refresh leaves it out too). */
export async function unusableAsGone<T>(read: Promise<T | undefined>): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if (err instanceof ScorerError && err.cause instanceof BadRecord) return undefined;
    throw err;
  }
}

/** What a sync left out of the engine's answers, by kind and reason. */
export interface RejectionSummary {
  /** Records left out (duplicates, which are used once, not included). */
  readonly leftOut: number;
  /** Of those, per kind. */
  readonly leftOutByKind: Readonly<Record<RecordKind, number>>;
  /** Every count, duplicates included, keyed "kind/reason". */
  readonly reasons: Readonly<Record<string, number>>;
  /** Up to 3 ids (or previews of unusable ones) of records left out. */
  readonly examples: readonly string[];
  /** The first record's message, for the log. */
  readonly example: string | undefined;
}

const MAX_EXAMPLES = 3;
const MAX_LEFT_OUT_HOST_IDS = 10_000;

/**
 * Records the engine sent that could not be used, gathered until the sync
 * that logs them takes them; `onReject` counts each one as it happens (metrics).
 */
export class RecordRejections {
  private reasons = new Map<string, number>();
  private leftOutByKind: Record<RecordKind, number> = { host: 0, cluster: 0, vm: 0, event: 0 };
  private examples: string[] = [];
  private example: string | undefined;

  /** Host ids (usable ones) of hosts left out, bounded: their VMs look like VMs on hidden hosts, and are not. */
  private leftOutHostIds = new Set<string>();
  private highestEvent: number | undefined;

  constructor(
    private readonly onReject: (kind: RecordKind, reason: RejectReason) => void = () => {},
    /** Blanks out what must never be logged (our token, our password) that an answer may echo back. */
    private readonly redact: (text: string) => string = (text) => text,
  ) {}

  /** `rawId`: `recordId` is what the engine sent where an id belongs (shown redacted, then shortened and quoted). */
  reject(kind: RecordKind, reason: RejectReason, recordId: string, message: string, rawId = false): void {
    const key = `${kind}/${reason}`;
    this.reasons.set(key, (this.reasons.get(key) ?? 0) + 1);
    if (reason !== 'duplicate') {
      this.leftOutByKind[kind]++;
      if (this.examples.length < MAX_EXAMPLES) this.examples.push(rawId ? preview(this.redact(recordId)) : this.redact(recordId));
      this.example ??= this.redact(message);
      if (kind === 'host' && this.leftOutHostIds.size < MAX_LEFT_OUT_HOST_IDS) this.leftOutHostIds.add(recordId);
      if (kind === 'event' && /^\d+$/.test(recordId)) this.highestEvent = Math.max(this.highestEvent ?? 0, Number(recordId));
    }
    this.onReject(kind, reason);
  }

  /** The highest id of an event left out whose id could be read: polls go on past it. */
  highestEventId(): number | undefined {
    return this.highestEvent;
  }

  /** Whether a host with this id was left out as unusable since the last take. */
  leftOutHost(id: string): boolean {
    return this.leftOutHostIds.has(id);
  }

  /** A new, empty tally counted into the same metrics and redacted the same way: one sync's own. */
  fresh(): RecordRejections {
    return new RecordRejections(this.onReject, this.redact);
  }

  /** What was gathered since the last take, for one log line; starts over. */
  take(): RejectionSummary | undefined {
    if (this.reasons.size === 0) return undefined;
    const byKind = this.leftOutByKind;
    const out: RejectionSummary = {
      leftOut: byKind.host + byKind.cluster + byKind.vm + byKind.event,
      leftOutByKind: byKind,
      reasons: Object.fromEntries(this.reasons),
      examples: this.examples,
      example: this.example,
    };
    this.reasons = new Map();
    this.leftOutByKind = { host: 0, cluster: 0, vm: 0, event: 0 };
    this.examples = [];
    this.example = undefined;
    this.leftOutHostIds = new Set();
    this.highestEvent = undefined;
    return out;
  }
}

/** Parses every record; one that fails is left out and counted in `rejections`. */
export function parseEach<T>(items: readonly unknown[], parse: (item: unknown) => T, rejections: RecordRejections): T[] {
  const out: T[] = [];
  for (const item of items) {
    try {
      out.push(parse(item));
    } catch (err) {
      if (!(err instanceof BadRecord)) throw err;
      rejections.reject(err.kind, err.reason, err.recordId, err.message, err.rawId);
    }
  }
  return out;
}
