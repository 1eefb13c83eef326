/**
 * The engine's scheduling set-up, read through the REST API (types and
 * services of oVirt/ovirt-engine-api-model: SchedulingPolicyUnit, Weight,
 * SchedulingPolicy, Cluster.scheduling_policy):
 *   GET /schedulingpolicyunits              units: name, type (filter | weight | load_balancing), internal, enabled
 *   GET /schedulingpolicies                 policies: id, name
 *   GET /schedulingpolicies/{id}/weights    per policy: factor, scheduling_policy_unit.id
 *   GET /clusters                           per cluster: scheduling_policy.id
 * Parsing is tolerant (strings for integers and booleans, `{}` for an empty
 * list) but bounded: names are clipped, lists are capped.
 */
import { ScorerError } from '../errors';
import type { ListShape } from './decoder';
import type { EngineClient } from './client';

export interface SchedulingUnit {
  readonly id: string;
  readonly name: string;
  /** "filter", "weight" or "load_balancing"; "" when absent. */
  readonly type: string;
  /** false for the units an external scheduler proxy advertised (discovered at engine start). */
  readonly internal: boolean;
  readonly enabled: boolean;
}

export interface PolicyWeight {
  readonly unitId: string;
  readonly factor: number;
}

export interface SchedulingPolicy {
  readonly id: string;
  readonly name: string;
  readonly weights: readonly PolicyWeight[];
}

export interface ClusterPolicy {
  readonly id: string;
  readonly name: string;
  /** undefined when the cluster names none (or the account may not see it). */
  readonly policyId: string | undefined;
}

/** Everything the engine said about scheduling, read in one go. */
export interface SchedulingSetup {
  readonly units: readonly SchedulingUnit[];
  readonly policies: readonly SchedulingPolicy[];
  readonly clusters: readonly ClusterPolicy[];
}

/** A site has tens of units and policies, and up to some thousands of clusters; more is not an honest answer. */
export const MAX_UNITS = 1_000;
export const MAX_POLICIES = 200;
export const MAX_CLUSTERS = 10_000;
const MAX_NAME = 256;

const UNIT_SHAPE: ListShape = {
  listKey: 'scheduling_policy_unit',
  fields: { id: true, name: true, type: true, internal: true, enabled: true },
  maxItems: MAX_UNITS,
};
const POLICY_SHAPE: ListShape = { listKey: 'scheduling_policy', fields: { id: true, name: true }, maxItems: MAX_POLICIES };
const WEIGHT_SHAPE: ListShape = {
  listKey: 'weight',
  fields: { id: true, factor: true, scheduling_policy_unit: { id: true } },
  maxItems: MAX_UNITS,
};
const CLUSTER_SHAPE: ListShape = {
  listKey: 'cluster',
  fields: { id: true, name: true, scheduling_policy: { id: true } },
  maxItems: MAX_CLUSTERS,
};

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The items under `key`: `{key: [...]}`, `{key: {...}}` (one) or `{}` (none). */
function items(body: unknown, key: string, max: number): Json[] {
  if (!isObject(body)) throw new ScorerError('engine_protocol', `a ${key} list that is not a JSON object`);
  const raw = body[key];
  if (raw !== undefined && raw !== null && typeof raw !== 'object') throw new ScorerError('engine_protocol', `"${key}" that is not a list`);
  const list = raw === undefined || raw === null ? [] : Array.isArray(raw) ? raw : [raw];
  if (list.length > max) throw new ScorerError('engine_protocol', `${list.length} ${key} items, more than the ${max} read`);
  return list.filter(isObject);
}

function text(v: unknown): string {
  const s = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
  return s.length > MAX_NAME ? `${s.slice(0, MAX_NAME)}...` : s;
}

/** Booleans arrive as "true"/"false" strings or as booleans; anything else is `fallback`. */
function bool(v: unknown, fallback: boolean): boolean {
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  return fallback;
}

/** Ids of scheduling objects are UUIDs on real engines, but only their equality matters here: any short text. */
function id(v: unknown): string | undefined {
  const s = text(v);
  return s === '' || s.length > 64 ? undefined : s;
}

export function parseUnits(body: unknown): SchedulingUnit[] {
  return items(body, 'scheduling_policy_unit', MAX_UNITS).flatMap((u) => {
    const unitId = id(u.id);
    if (unitId === undefined) return [];
    // An absent `enabled` is taken as enabled: the engine always writes it, and absent says nothing against.
    return [
      {
        id: unitId,
        name: text(u.name),
        type: text(u.type).toLowerCase(),
        internal: bool(u.internal, true),
        enabled: bool(u.enabled, true),
      },
    ];
  });
}

export function parsePolicies(body: unknown): { id: string; name: string }[] {
  return items(body, 'scheduling_policy', MAX_POLICIES).flatMap((p) => {
    const policyId = id(p.id);
    return policyId === undefined ? [] : [{ id: policyId, name: text(p.name) }];
  });
}

export function parseWeights(body: unknown): PolicyWeight[] {
  return items(body, 'weight', MAX_UNITS).flatMap((w) => {
    // The engine gives a weight its unit's id as its own too: the fallback when the link is missing.
    const unitId = id(isObject(w.scheduling_policy_unit) ? w.scheduling_policy_unit.id : undefined) ?? id(w.id);
    if (unitId === undefined) return [];
    const raw = text(w.factor);
    const factor = /^-?\d{1,9}$/.test(raw) ? Number(raw) : NaN;
    // The engine defaults a weight's factor to 1 when it was added without one.
    return [{ unitId, factor: Number.isSafeInteger(factor) ? factor : 1 }];
  });
}

export function parseClusterPolicies(body: unknown): ClusterPolicy[] {
  return items(body, 'cluster', MAX_CLUSTERS).flatMap((c) => {
    const clusterId = id(c.id);
    if (clusterId === undefined) return [];
    return [{ id: clusterId, name: text(c.name), policyId: id(isObject(c.scheduling_policy) ? c.scheduling_policy.id : undefined) }];
  });
}

/**
 * The four reads, in sequence (a few requests per refresh, one per policy
 * for its weights). Any failure throws, naming the endpoint and status: the
 * caller turns it into "unknown", never into a failed service.
 */
export async function readSchedulingSetup(client: EngineClient, signal?: AbortSignal): Promise<SchedulingSetup> {
  const units = await client.getOptional('/schedulingpolicyunits', {}, 'GET /schedulingpolicyunits', parseUnits, UNIT_SHAPE, signal);
  const listed = await client.getOptional('/schedulingpolicies', {}, 'GET /schedulingpolicies', parsePolicies, POLICY_SHAPE, signal);
  const policies: SchedulingPolicy[] = [];
  for (const p of listed) {
    const weights = await client.getOptional(
      `/schedulingpolicies/${encodeURIComponent(p.id)}/weights`,
      {},
      'GET /schedulingpolicies/{id}/weights',
      parseWeights,
      WEIGHT_SHAPE,
      signal,
    );
    policies.push({ ...p, weights });
  }
  // Counted apart from the inventory's GET /clusters: a refusal here is the view's, not the inventory's.
  const clusters = await client.getOptional('/clusters', {}, 'GET /clusters (engine view)', parseClusterPolicies, CLUSTER_SHAPE, signal);
  return { units, policies, clusters };
}
