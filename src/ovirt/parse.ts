/**
 * Typed parsing of the engine's JSON. Real engines send integers as strings,
 * empty lists as `{}`, and omit fields freely. Nothing from the engine is
 * trusted: ids must be UUIDs and strings are bounded. An item we cannot use
 * is an engine_protocol error; in a list, parseEach drops it and counts it,
 * so one bad item neither fails a sync nor reaches a client.
 */
import { ScorerError } from '../errors';
import { type EngineCluster, type EngineEvent, type EngineHost, type EngineVm, MAX_OS_FIELD_LENGTH, type OsIdentity, uuid } from './model';

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

/** A short, printable description of a value from the engine: never the value itself when it is big or nested. */
export function preview(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
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

function requireId(obj: unknown, what: string): string {
  const raw = field(obj, 'id');
  if (raw === undefined || raw === '') throw new ScorerError('engine_protocol', `engine sent a ${what} without an id`);
  const id = typeof raw === 'string' ? uuid(raw) : undefined;
  if (id === undefined) throw new ScorerError('engine_protocol', `engine sent a ${what} id that is not a UUID: ${preview(raw)}`);
  return id;
}

/** An optional reference (`host.id` of a VM, `vm.id` of an event): absent, or a UUID. */
function optionalId(obj: unknown, path: readonly string[], what: string): string | undefined {
  const raw = text(field(obj, ...path));
  if (raw === '') return undefined;
  const id = uuid(raw);
  if (id === undefined) throw new ScorerError('engine_protocol', `engine sent a ${what} that is not a UUID: ${preview(raw)}`);
  return id;
}

function bounded(s: string, what: string): string {
  if (s.length > MAX_OS_FIELD_LENGTH) throw new ScorerError('engine_protocol', `engine sent ${what} longer than ${MAX_OS_FIELD_LENGTH} characters`);
  return s;
}

/** Host names as the engine allows them (letters, digits, '.', '-', '_'): only such a name goes into an engine search. */
export const searchableHostName = (name: string): boolean => /^[A-Za-z0-9._-]{1,255}$/.test(name);

/** What a sync dropped from the engine's answers: items it could not use, and repeats. */
export class Rejections {
  invalid = 0;
  duplicates = 0;
  /** The first reason, as an example for the log. */
  example: string | undefined;

  reject(err: unknown): void {
    this.invalid++;
    this.example ??= err instanceof Error ? err.message : String(err);
  }

  /** The counts so far, for one log line; resets them. */
  take(): { invalid: number; duplicates: number; example: string | undefined } | undefined {
    if (this.invalid + this.duplicates === 0) return undefined;
    const out = { invalid: this.invalid, duplicates: this.duplicates, example: this.example };
    this.invalid = this.duplicates = 0;
    this.example = undefined;
    return out;
  }
}

/** Parses every item; an item that fails is dropped and counted in `rejections`. */
export function parseEach<T>(items: readonly unknown[], parse: (item: unknown) => T, rejections: Rejections): T[] {
  const out: T[] = [];
  for (const item of items) {
    try {
      out.push(parse(item));
    } catch (err) {
      if (!(err instanceof ScorerError)) throw err;
      rejections.reject(err);
    }
  }
  return out;
}

/**
 * The OS identity rule: type is `os.type`; version is `os.version.full_version`,
 * else the guest agent's "distribution full_version", else "".
 */
export function osIdentity(vm: unknown): OsIdentity {
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
  return { type: bounded(type, 'an os.type'), version: bounded(version, 'an OS version') };
}

export function parseVm(obj: unknown): EngineVm {
  if (!isObject(obj)) throw new ScorerError('engine_protocol', 'engine sent a vm that is not a JSON object');
  return { id: requireId(obj, 'vm'), hostId: optionalId(obj, ['host', 'id'], 'vm host.id'), os: osIdentity(obj) };
}

/** Host statuses are short enum names ("up", "non_responsive"): anything else is not one. */
const STATUS = /^[a-z_]{0,64}$/;

export function parseHost(obj: unknown): EngineHost {
  if (!isObject(obj)) throw new ScorerError('engine_protocol', 'engine sent a host that is not a JSON object');
  const id = requireId(obj, 'host');
  // An odd name does not make the host unusable (it is joined on id); only searching by it is refused.
  const name = text(obj.name);
  if (name.length > 255 || /[\u0000-\u001f\u007f]/.test(name)) throw new ScorerError('engine_protocol', `engine sent host ${id} with a name longer than 255 characters or with control characters`);
  // Status and cluster only describe the host to people: an odd one is left out, the host is still scored.
  const status = text(obj.status).toLowerCase();
  return { id, name, clusterId: uuid(text(field(obj, 'cluster', 'id'))), status: STATUS.test(status) ? status : '' };
}

/** Booleans arrive as "true"/"false" strings or as JSON booleans. */
function parseBoolean(v: unknown, what: string): boolean {
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false' || v === undefined) return false;
  throw new ScorerError('engine_protocol', `engine sent ${what} that is not a boolean: ${preview(v)}`);
}

export function parseCluster(obj: unknown): EngineCluster {
  if (!isObject(obj)) throw new ScorerError('engine_protocol', 'engine sent a cluster that is not a JSON object');
  return {
    id: requireId(obj, 'cluster'),
    name: bounded(text(obj.name), 'a cluster name'),
    ksmEnabled: parseBoolean(field(obj, 'ksm', 'enabled'), 'a cluster ksm.enabled'),
  };
}

export function parseEvent(obj: unknown): EngineEvent {
  if (!isObject(obj)) throw new ScorerError('engine_protocol', 'engine sent an event that is not a JSON object');
  return {
    id: parseInteger(obj.id, 'an event id'),
    code: obj.code === undefined ? -1 : parseInteger(obj.code, 'an event code'),
    vmId: optionalId(obj, ['vm', 'id'], 'event vm.id'),
    hostId: optionalId(obj, ['host', 'id'], 'event host.id'),
  };
}

/** The reason in an engine fault body, for error messages and logs: its known fields only, each bounded and printable. */
export function faultReason(body: unknown): string | undefined {
  const fault = isObject(body) && isObject(body.fault) ? body.fault : body;
  const parts = [field(fault, 'reason'), field(fault, 'detail'), field(fault, 'error_description'), field(fault, 'error')]
    .map((v) => text(v).replace(/[\u0000-\u001f\u007f]+/g, ' ').trim())
    .filter((s) => s !== '')
    .map((s) => (s.length > 160 ? `${s.slice(0, 160)}...` : s));
  return parts.length > 0 ? parts.join(': ') : undefined;
}
