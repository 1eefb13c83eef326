/**
 * Whether the engine really uses ksm-scorer, from its scheduling set-up and
 * the calls it made: one state, the first link of the chain that is missing
 * (discovered -> enabled -> weighed by a policy -> policy on a cluster ->
 * listener on -> calls arrive), and plain sentences saying what to do next.
 * Pure: the watcher feeds it, the RPC, the CLI, the log and /metrics show it.
 */
import { SETTINGS } from '../config/settings';
import { UNIT_NAME } from '../contract/scheduler-unit';
import type { SchedulingSetup } from '../ovirt/scheduling';
import type { CallCount } from './call-window';

export type EngineUseState =
  'unknown' | 'not_discovered' | 'unit_disabled' | 'not_weighed' | 'no_cluster' | 'proxy_off' | 'not_called' | 'in_use';

/** What the last read of the set-up gave: the set-up, or why there is none. */
export type SetupRead =
  | { readonly kind: 'read'; readonly setup: SchedulingSetup; readonly at: number }
  | { readonly kind: 'failed'; readonly reason: string; readonly at: number }
  | { readonly kind: 'pending' };

export interface PolicyUse {
  readonly id: string;
  readonly name: string;
  readonly factor: number;
}

export interface ClusterUse {
  readonly id: string;
  readonly name: string;
  readonly policyId: string;
  readonly policyName: string;
  readonly weighsUnit: boolean;
}

export interface EngineStatus {
  readonly state: EngineUseState;
  readonly advice: readonly string[];
  readonly engine: {
    readonly known: boolean;
    readonly unknownReason: string;
    readonly readAt: number | undefined;
    readonly unitDiscovered: boolean;
    readonly unitEnabled: boolean;
    readonly policies: readonly PolicyUse[];
    readonly clusters: readonly ClusterUse[];
  };
  readonly calls: {
    readonly listening: boolean;
    readonly counts: readonly CallCount[];
    readonly lastCallAt: number | undefined;
  };
}

export interface CallsSeen {
  readonly listening: boolean;
  readonly counts: readonly CallCount[];
  readonly lastCallAt: number | undefined;
}

/** Names listed in a sentence; the rest are counted ("and 12 more"). */
const NAMES_SHOWN = 10;

export function engineStatus(read: SetupRead, calls: CallsSeen, account: string): EngineStatus {
  const empty = { unitDiscovered: false, unitEnabled: false, policies: [], clusters: [] };
  if (read.kind !== 'read') {
    const reason = read.kind === 'pending' ? 'not read yet (the first read runs at start)' : read.reason;
    const advice = [
      read.kind === 'pending'
        ? `the engine's scheduling set-up is not read yet: ask again in a few seconds`
        : `the engine's scheduling set-up is unknown (${reason}): ${forbidden(reason) ? `the account ${account} may not read it; give it a role that may (e.g. ReadOnlyAdmin on the system), or check` : 'check'} Administration > Configure > Scheduling Policies in the engine's portal. Scoring is not affected.`,
      ...callSentences(calls, 'unknown', []),
    ];
    return {
      state: 'unknown',
      advice,
      engine: { known: false, unknownReason: reason, readAt: read.kind === 'failed' ? read.at : undefined, ...empty },
      calls,
    };
  }
  const { setup } = read;
  // The engine's external units have internal=false; it marks one it no longer discovers disabled.
  const units = setup.units.filter((u) => u.name === UNIT_NAME && !u.internal);
  const unitIds = new Set(units.map((u) => u.id));
  const unitEnabled = units.some((u) => u.enabled);
  const policyNames = new Map(setup.policies.map((p) => [p.id, p.name]));
  const policies: PolicyUse[] = setup.policies.flatMap((p) => {
    const w = p.weights.find((x) => unitIds.has(x.unitId));
    return w === undefined ? [] : [{ id: p.id, name: p.name, factor: w.factor }];
  });
  const weighing = new Set(policies.map((p) => p.id));
  const clusters: ClusterUse[] = setup.clusters.map((c) => ({
    id: c.id,
    name: c.name,
    policyId: c.policyId ?? '',
    policyName: c.policyId === undefined ? '' : (policyNames.get(c.policyId) ?? c.policyId),
    weighsUnit: c.policyId !== undefined && weighing.has(c.policyId),
  }));
  const engine = { known: true, unknownReason: '', readAt: read.at, unitDiscovered: units.length > 0, unitEnabled, policies, clusters };
  const using = clusters.filter((c) => c.weighsUnit);

  let state: EngineUseState;
  const advice: string[] = [];
  if (units.length === 0) {
    state = 'not_discovered';
    advice.push(
      `the engine has not discovered the unit ${UNIT_NAME}: set ExternalSchedulerEnabled=true and ExternalSchedulerServiceURL to this service's XML-RPC listener with engine-config, then restart ovirt-engine (it discovers units only at start)`,
    );
  } else if (!unitEnabled) {
    state = 'unit_disabled';
    advice.push(
      `the engine knows ${UNIT_NAME} but has it disabled: its last discovery (at engine start) did not reach ksm-scorer; check engine-config -g ExternalSchedulerServiceURL points at this service's XML-RPC listener and that it was up, then restart ovirt-engine`,
    );
  } else if (policies.length === 0) {
    state = 'not_weighed';
    advice.push(
      `the engine has discovered ${UNIT_NAME}, but no scheduling policy weighs it: add it to a policy's weight modules with a factor (Administration > Configure > Scheduling Policies > Edit), then set that policy on the clusters`,
    );
  } else if (using.length === 0) {
    state = 'no_cluster';
    advice.push(
      `${policySentence(policies)}, but no cluster uses ${policies.length === 1 ? 'it' : 'them'}: set it on the clusters that should place VMs by OS (Compute > Clusters > Edit > Scheduling Policy)`,
    );
  } else {
    state = 'in_use';
  }
  if (policies.length > 0 && using.length > 0) advice.push(useSentence(policies, clusters));
  if (state === 'in_use') {
    const costCalls = calls.counts.filter((c) => c.method === 'runCostFunctions').reduce((s, c) => s + c.count, 0);
    if (!calls.listening) state = 'proxy_off';
    else if (costCalls === 0) state = 'not_called';
  }
  advice.push(...callSentences(calls, state, using));
  return { state, advice, engine, calls };
}

/** "policy X weighs the unit at factor 2" (several: "policies X (factor 2), Y (factor 1) weigh the unit"). */
function policySentence(policies: readonly PolicyUse[]): string {
  if (policies.length === 1) return `policy ${policies[0]!.name} weighs the unit at factor ${policies[0]!.factor}`;
  return `policies ${names(policies.map((p) => `${p.name} (factor ${p.factor})`))} weigh the unit`;
}

/** "policy X weighs the unit at factor 2, clusters A, B use it; cluster C uses policy Y, which does not". */
function useSentence(policies: readonly PolicyUse[], clusters: readonly ClusterUse[]): string {
  const using = clusters.filter((c) => c.weighsUnit).map((c) => c.name);
  const parts = [
    `${policySentence(policies)}, ${plural(using, 'cluster', 'clusters')} ${using.length === 1 ? 'uses' : 'use'} ${policies.length === 1 ? 'it' : 'them'}`,
  ];
  // The other clusters by their policy ("": none).
  const byPolicy = new Map<string, string[]>();
  for (const c of clusters) {
    if (c.weighsUnit) continue;
    const members = byPolicy.get(c.policyName);
    if (members === undefined) byPolicy.set(c.policyName, [c.name]);
    else members.push(c.name);
  }
  for (const [policy, members] of byPolicy) {
    const who = plural(members, 'cluster', 'clusters');
    const one = members.length === 1;
    parts.push(
      policy === ''
        ? `${who} ${one ? 'names' : 'name'} no scheduling policy`
        : `${who} ${one ? 'uses' : 'use'} policy ${policy}, which does not`,
    );
  }
  return parts.join('; ');
}

function callSentences(calls: CallsSeen, state: EngineUseState, using: readonly ClusterUse[]): string[] {
  if (!calls.listening) {
    const LISTEN = SETTINGS.ovirtProxy.listen.env;
    return [
      state === 'proxy_off'
        ? `the XML-RPC listener is off here (${LISTEN} unset), so the engine cannot call: set it and point ExternalSchedulerServiceURL at it`
        : `the XML-RPC listener is off (${LISTEN} unset): the engine can only use ksm-scorer once it is set`,
    ];
  }
  const total = calls.counts.reduce((s, c) => s + c.count, 0);
  const faults = calls.counts.filter((c) => c.outcome !== 'ok').reduce((s, c) => s + c.count, 0);
  const last = calls.lastCallAt === undefined ? 'none since ksm-scorer started' : `the last at ${new Date(calls.lastCallAt).toISOString()}`;
  const out: string[] = [];
  if (total === 0) {
    out.push(
      state === 'not_called'
        ? `no call from the engine in the last hour (${last}): if VMs were started or migrated on ${plural(
            using.map((c) => c.name),
            'cluster',
            'clusters',
          )} since, check engine-config -g ExternalSchedulerEnabled is true and ExternalSchedulerServiceURL reaches this listener`
        : `no call from the engine in the last hour (${last})`,
    );
  } else {
    const byMethod = calls.counts.map((c) => `${c.method} ${c.outcome} ${c.count}`).join(', ');
    out.push(`the engine called ${total} time${total === 1 ? '' : 's'} in the last hour (${byMethod}), ${last}`);
    if (faults > 0)
      out.push(`${faults} of those calls failed: the log says why (and ksm_scorer_xmlrpc_calls_total{outcome="fault"} counts them)`);
  }
  return out;
}

function plural(items: readonly string[], one: string, many: string): string {
  return `${items.length === 1 ? one : many} ${names(items)}`;
}

function names(items: readonly string[]): string {
  if (items.length <= NAMES_SHOWN) return items.join(', ');
  return `${items.slice(0, NAMES_SHOWN).join(', ')} and ${items.length - NAMES_SHOWN} more`;
}

function forbidden(reason: string): boolean {
  return /HTTP 40[13]\b/.test(reason);
}
