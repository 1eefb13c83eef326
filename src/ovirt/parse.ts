/**
 * Typed parsing of the engine's JSON. Real engines send integers as strings,
 * empty lists as `{}`, and omit fields freely; anything we cannot use at all
 * (no id, a list that is not a list) is an engine_protocol error, so a bad
 * answer fails one request instead of the process.
 */
import { ScorerError } from '../errors';
import type { EngineEvent, EngineHost, EngineVm, OsIdentity } from './model';

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
  if (!Number.isSafeInteger(n)) throw new ScorerError('engine_protocol', `engine sent ${what} that is not an integer: ${JSON.stringify(v)?.slice(0, 40)}`);
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

function requireId(obj: unknown, what: string): string {
  const id = field(obj, 'id');
  if (typeof id !== 'string' || id === '') throw new ScorerError('engine_protocol', `engine sent a ${what} without an id`);
  return id;
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
  return { type, version };
}

export function parseVm(obj: unknown): EngineVm {
  if (!isObject(obj)) throw new ScorerError('engine_protocol', 'engine sent a vm that is not a JSON object');
  const hostId = text(field(obj, 'host', 'id'));
  return { id: requireId(obj, 'vm'), hostId: hostId === '' ? undefined : hostId, os: osIdentity(obj) };
}

export function parseHost(obj: unknown): EngineHost {
  if (!isObject(obj)) throw new ScorerError('engine_protocol', 'engine sent a host that is not a JSON object');
  return { id: requireId(obj, 'host'), name: text(obj.name) };
}

export function parseEvent(obj: unknown): EngineEvent {
  if (!isObject(obj)) throw new ScorerError('engine_protocol', 'engine sent an event that is not a JSON object');
  const vmId = text(field(obj, 'vm', 'id'));
  const hostId = text(field(obj, 'host', 'id'));
  return {
    id: parseInteger(obj.id, 'an event id'),
    code: obj.code === undefined ? -1 : parseInteger(obj.code, 'an event code'),
    vmId: vmId === '' ? undefined : vmId,
    hostId: hostId === '' ? undefined : hostId,
  };
}

/** The reason in an engine fault body, for error messages and logs. */
export function faultReason(body: unknown): string | undefined {
  const fault = isObject(body) && isObject(body.fault) ? body.fault : body;
  const parts = [field(fault, 'reason'), field(fault, 'detail'), field(fault, 'error_description'), field(fault, 'error')]
    .map(text)
    .filter((s) => s !== '');
  return parts.length > 0 ? parts.join(': ').slice(0, 300) : undefined;
}
