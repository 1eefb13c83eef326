/**
 * Typed parsing of the engine's JSON. Real engines send integers as strings,
 * empty lists as `{}`, and omit fields freely. Nothing from the engine is
 * trusted: ids must be UUIDs and strings are bounded. A record we cannot use
 * is a BadRecord (rejections.ts: an engine_protocol error with a reason); in
 * a list, parseEach leaves it out and counts it, so one bad record neither
 * fails a sync nor reaches a client.
 */
import { ScorerError } from '../errors';
import { type EngineCluster, type EngineEvent, type EngineHost, type EngineVm, MAX_OS_FIELD_LENGTH, type OsIdentity, uuid } from './model';
import { BadRecord, preview, type RecordKind } from './rejections';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A string field; numbers (and booleans) become their text, anything else "". */
function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return '';
}

function field(obj: unknown, ...path: string[]): unknown {
  let cur: unknown = obj;
  for (const key of path) {
    if (!isObject(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

/** Integers arrive as JSON strings or numbers. */
export function parseInteger(v: unknown, what: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new ScorerError('engine_protocol', `engine sent ${what} that is not an integer: ${preview(v)}`);
  return n;
}

/** `{"vm": [...]}`, `{"vm": {...}}` (one item) or `{}` (none). */
export function listItems(body: unknown, key: string): unknown[] {
  if (!isObject(body)) throw new ScorerError('engine_protocol', `engine sent a ${key} list that is not a JSON object`);
  const items = body[key];
  if (items === undefined || items === null) return [];
  if (Array.isArray(items)) return items;
  if (isObject(items)) return [items];
  throw new ScorerError('engine_protocol', `engine sent "${key}" that is not a list`);
}

/** What stood where an id belongs, as sent, bounded: redacted before it is shortened for display, so no secret survives a cut. */
function rawText(v: unknown): string {
  if (typeof v === 'string') return v.slice(0, 1_024);
  return preview(v);
}

function requireId(obj: unknown, kind: RecordKind): string {
  const raw = field(obj, 'id');
  if (raw === undefined || raw === '') throw new BadRecord(kind, 'no_id', '(none)', `engine sent a ${kind} without an id`);
  const id = typeof raw === 'string' ? uuid(raw) : undefined;
  // The value is in the example, redacted: never in a message, where a cut could leave part of a secret.
  if (id === undefined) throw new BadRecord(kind, 'bad_id', rawText(raw), `engine sent a ${kind} id that is not a UUID`, true);
  return id;
}

/** An optional reference (`host.id` of a VM, `vm.id` of an event): absent, or a UUID. */
function optionalId(obj: unknown, path: readonly string[], kind: RecordKind, recordId: string): string | undefined {
  const raw = text(field(obj, ...path));
  if (raw === '') return undefined;
  const id = uuid(raw);
  if (id === undefined) throw new BadRecord(kind, 'bad_reference', recordId, `engine sent a ${kind} ${path.join('.')} that is not a UUID`);
  return id;
}

function bounded(s: string, what: string, kind: RecordKind, recordId: string): string {
  if (s.length > MAX_OS_FIELD_LENGTH)
    throw new BadRecord(kind, 'bad_field', recordId, `engine sent ${what} longer than ${MAX_OS_FIELD_LENGTH} characters`);
  return s;
}

/** Host names as the engine allows them (letters, digits, '.', '-', '_'): only such a name goes into an engine search. */
export const searchableHostName = (name: string): boolean => /^[A-Za-z0-9._-]{1,255}$/.test(name);

/**
 * The OS identity rule: type is `os.type`; version is `os.version.full_version`,
 * else the guest agent's "distribution full_version", else "".
 */
export function osIdentity(vm: unknown, vmId = ''): OsIdentity {
  const type = text(field(vm, 'os', 'type'));
  let version = text(field(vm, 'os', 'version', 'full_version'));
  if (version === '') {
    const guest = field(vm, 'guest_operating_system');
    const full = text(field(guest, 'version', 'full_version'));
    if (full !== '') {
      const distribution = text(field(guest, 'distribution'));
      version = distribution === '' ? full : `${distribution} ${full}`;
    }
  }
  return { type: bounded(type, 'an os.type', 'vm', vmId), version: bounded(version, 'an OS version', 'vm', vmId) };
}

export function parseVm(obj: unknown): EngineVm {
  if (!isObject(obj)) throw notAnObject('vm', obj);
  const id = requireId(obj, 'vm');
  return { id, hostId: optionalId(obj, ['host', 'id'], 'vm', id), os: osIdentity(obj, id) };
}

const notAnObject = (kind: RecordKind, v: unknown) =>
  new BadRecord(kind, 'not_an_object', rawText(v), `engine sent a ${kind} that is not a JSON object`, true);

/** Host statuses are short enum names ("up", "non_responsive"): anything else is not one. */
const STATUS = /^[a-z_]{0,64}$/;

export function parseHost(obj: unknown): EngineHost {
  if (!isObject(obj)) throw notAnObject('host', obj);
  const id = requireId(obj, 'host');
  // An odd name does not make the host unusable (it is joined on id); only searching by it is refused.
  const name = text(obj.name);
  // oxlint-disable-next-line no-control-regex -- control characters are what it looks for
  if (name.length > 255 || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new BadRecord(
      'host',
      'bad_field',
      id,
      `engine sent host ${id} with a name longer than 255 characters or with control characters`,
    );
  }
  // Status, cluster and KSM only describe the host to people: an odd one is left out, the host is still scored.
  const status = text(obj.status).toLowerCase();
  return {
    id,
    name,
    clusterId: uuid(text(field(obj, 'cluster', 'id'))),
    status: STATUS.test(status) ? status : '',
    ksmEnabled: ksmEnabled(obj),
  };
}

/** `ksm.enabled`, a boolean written as "true"/"false" or as JSON; undefined when absent or odd (it only describes). */
function ksmEnabled(obj: Json): boolean | undefined {
  const v = field(obj, 'ksm', 'enabled');
  return v === true || v === 'true' ? true : v === false || v === 'false' ? false : undefined;
}

export function parseCluster(obj: unknown): EngineCluster {
  if (!isObject(obj)) throw notAnObject('cluster', obj);
  const id = requireId(obj, 'cluster');
  // An odd ksm.enabled leaves the KSM fact unknown; the cluster (its name) is still used.
  return { id, name: bounded(text(obj.name), 'a cluster name', 'cluster', id), ksmEnabled: ksmEnabled(obj) };
}

/** An event's id alone: where polling goes on from, whatever else of the event is unreadable. */
export function parseEventId(obj: unknown): number {
  if (!isObject(obj)) throw notAnObject('event', obj);
  try {
    return parseInteger(obj.id, 'an event id');
  } catch {
    throw new BadRecord(
      'event',
      obj.id === undefined ? 'no_id' : 'bad_id',
      rawText(obj.id),
      'engine sent an event id that is not an integer',
      true,
    );
  }
}

export function parseEvent(obj: unknown): EngineEvent {
  const id = parseEventId(obj);
  const event = obj as Json;
  let code = -1;
  try {
    if (event.code !== undefined) code = parseInteger(event.code, 'an event code');
  } catch (err) {
    throw new BadRecord('event', 'bad_field', String(id), (err as Error).message);
  }
  return {
    id,
    code,
    vmId: optionalId(event, ['vm', 'id'], 'event', String(id)),
    hostId: optionalId(event, ['host', 'id'], 'event', String(id)),
  };
}

// oxlint-disable-next-line no-control-regex -- control characters are what it blanks out
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]+/g;

/** The reason in an engine fault body, for error messages and logs: its known fields only, each bounded and printable. */
export function faultReason(body: unknown): string | undefined {
  const fault = isObject(body) && isObject(body.fault) ? body.fault : body;
  const parts = [field(fault, 'reason'), field(fault, 'detail'), field(fault, 'error_description'), field(fault, 'error')]
    .map((v) => text(v).replace(CONTROL_CHARACTERS, ' ').trim())
    .filter((s) => s !== '')
    .map((s) => (s.length > 160 ? `${s.slice(0, 160)}...` : s));
  return parts.length > 0 ? parts.join(': ') : undefined;
}
