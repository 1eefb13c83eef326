/**
 * The methods of the oVirt engine's external-scheduler protocol, answered
 * the way the engine reads them: discover advertises one weight unit, and
 * runCostFunctions turns ScoreHosts scores into weights (lower is better).
 */
import { UNIT_DESCRIPTION, UNIT_NAME } from '../contract/scheduler-unit';
import { forCaller, ScorerError } from '../errors';
import type { Logger } from '../log';
import { uuid } from '../ovirt/model';
import type { HostScore } from '../scoring/score';
import { clip, FaultCode, type MethodCall, typeName, XmlRpcFault, type XmlRpcValue } from './xmlrpc-values';
import type { XmlRpcOut } from './xmlrpc-writer';

/** Policy unit names are short identifiers; the engine's own are under 50 characters. */
const MAX_UNIT_NAME = 256;

export type VmScores =
  { readonly kind: 'scored'; readonly scores: readonly Pick<HostScore, 'score'>[] } | { readonly kind: 'vm_not_found' };

/**
 * Scores `hostIds` (not empty, no repeats) for the VM exactly as gRPC
 * ScoreHosts does, one score per id in the same order. Throws ScorerError
 * for anything but a VM the engine does not have.
 */
export type ScoreVm = (vmId: string, hostIds: readonly string[], signal: AbortSignal) => Promise<VmScores>;

/** The engine prefers the lowest weight and its own units use 0..1000: the score (0..100, higher better) as an integer cost. */
export const weight = (score: number): number => Math.round(10 * (100 - score));

export type ProxyMethods = (call: MethodCall, signal: AbortSignal) => Promise<XmlRpcOut>;

interface Method {
  /** XML-RPC types of the result and then each parameter, as system.methodSignature tells them. */
  readonly signature: readonly string[];
  readonly help: string;
  run(params: readonly XmlRpcValue[], signal: AbortSignal): XmlRpcOut | Promise<XmlRpcOut>;
}

const ok = (result: XmlRpcOut): XmlRpcOut => ({ result_code: 0, result, plugin_errors: {}, errors: [] });

export function createProxyMethods({ scoreVm, logger }: { scoreVm: ScoreVm; logger: Logger }): ProxyMethods {
  const methods: Record<string, Method> = {
    discover: {
      signature: ['struct'],
      help: 'The policy units this proxy offers: {filters, scores, balance}, each {name: [description, custom properties regex]}.',
      run: () => ({ filters: {}, scores: { [UNIT_NAME]: [UNIT_DESCRIPTION, ''] }, balance: {} }),
    },
    runCostFunctions: {
      signature: ['struct', 'array', 'array', 'string', 'struct'],
      help: `runCostFunctions([[unit, factor], ...], [hostId, ...], vmId, {properties}): [hostId, weight, unit] for ${UNIT_NAME}, weight = round(10 x (100 - score)), 0..1000, lower is better; the engine applies the factor.`,
      run: (params, signal) => runCostFunctions(params, signal),
    },
    runFilters: {
      signature: ['struct', 'array', 'array', 'string', 'struct'],
      help: 'runFilters([name, ...], [hostId, ...], vmId, {properties}): this proxy has no filters, so every host passes.',
      run(params) {
        strings(params[0], 'runFilters', 'filter names');
        strings(params[1], 'runFilters', 'host ids');
        string(params[2], 'runFilters', 'vm id');
        properties(params[3], 'runFilters');
        return ok(params[1] as string[]);
      },
    },
    runLoadBalancing: {
      signature: ['struct', 'string', 'array', 'struct'],
      help: 'runLoadBalancing(name, [hostId, ...], {properties}): this proxy has no balancing unit, so it never asks for a migration.',
      run(params) {
        string(params[0], 'runLoadBalancing', 'balance name');
        strings(params[1], 'runLoadBalancing', 'host ids');
        properties(params[2], 'runLoadBalancing');
        return ok(['', []]);
      },
    },
    'system.listMethods': {
      signature: ['array'],
      help: 'The names of the methods this server answers.',
      run: () => Object.keys(methods).sort(),
    },
    'system.methodHelp': {
      signature: ['string', 'string'],
      help: 'What a method does.',
      run: (params) => method(string(params[0], 'system.methodHelp', 'method name')).help,
    },
    'system.methodSignature': {
      signature: ['array', 'string'],
      help: 'The XML-RPC types of a method: the result, then each parameter.',
      run: (params) => [method(string(params[0], 'system.methodSignature', 'method name')).signature],
    },
  };

  function method(name: string): Method {
    if (!Object.hasOwn(methods, name))
      throw new XmlRpcFault(FaultCode.methodNotFound, `no method ${JSON.stringify(clip(name))}; system.listMethods tells the methods`);
    return methods[name]!;
  }

  async function runCostFunctions(params: readonly XmlRpcValue[], signal: AbortSignal): Promise<XmlRpcOut> {
    const units = array(params[0], 'runCostFunctions', 'units').map((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2)
        throw paramFault('runCostFunctions', `units[${i}]`, 'a [name, factor] pair of a string and an int', pair);
      // The pair is right, one of its members is not: name that member, not the pair ("got an array").
      if (typeof pair[0] !== 'string') throw paramFault('runCostFunctions', `units[${i}] name`, 'a string', pair[0]);
      if (typeof pair[1] !== 'number') throw paramFault('runCostFunctions', `units[${i}] factor`, 'an int', pair[1]);
      // Unknown units are echoed back as plugin_errors keys (the engine maps them by name): no essay-long names.
      if (pair[0].length > MAX_UNIT_NAME)
        throw new XmlRpcFault(FaultCode.invalidParams, `runCostFunctions: units[${i}] has a name longer than ${MAX_UNIT_NAME} characters`);
      return pair[0];
    });
    const hostIds = strings(params[1], 'runCostFunctions', 'host ids');
    const vmId = string(params[2], 'runCostFunctions', 'vm id');
    properties(params[3], 'runCostFunctions');

    const pluginErrors: Record<string, string[]> = {};
    for (const unit of new Set(units)) {
      if (unit !== UNIT_NAME) pluginErrors[unit] = [`ksm-scorer has no policy unit ${JSON.stringify(unit)}; it offers ${UNIT_NAME}`];
    }
    const result: XmlRpcOut[] = [];
    const asked = onePerHost(hostIds);
    if (units.includes(UNIT_NAME) && asked.length > 0) {
      try {
        const answer = await scoreVm(vmId, asked, signal);
        if (answer.kind === 'vm_not_found') {
          pluginErrors[UNIT_NAME] = [`the oVirt engine has no VM ${vmId}`];
        } else {
          for (let i = 0; i < asked.length; i++) result.push([asked[i]!, weight(answer.scores[i]!.score), UNIT_NAME]);
        }
      } catch (err) {
        const e = ScorerError.from(err);
        if (e.code === 'invalid_argument') throw new XmlRpcFault(FaultCode.invalidParams, `runCostFunctions: ${e.message}`);
        pluginErrors[UNIT_NAME] = [forCaller(e, logger, 'runCostFunctions').message];
      }
    }
    return { result_code: Object.keys(pluginErrors).length > 0 ? 1 : 0, result, plugin_errors: pluginErrors, errors: [] };
  }

  return async (call, signal) => {
    const m = method(call.methodName);
    const arity = m.signature.length - 1;
    if (call.params.length !== arity) {
      throw new XmlRpcFault(
        FaultCode.invalidParams,
        `${call.methodName} takes ${arity} parameter${arity === 1 ? '' : 's'}, got ${call.params.length}`,
      );
    }
    return m.run(call.params, signal);
  };
}

/**
 * Every host once, in the order asked, its id as first sent: UUIDs are case-insensitive, so ids are
 * compared in lower case (as gRPC reads them), not as strings; 256 spellings of one id are one host.
 */
function onePerHost(hostIds: readonly string[]): string[] {
  const seen = new Set<string>();
  return hostIds.filter((id) => {
    const key = uuid(id) ?? id;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function paramFault(method: string, what: string, expected: string, got: XmlRpcValue | undefined): XmlRpcFault {
  return new XmlRpcFault(FaultCode.invalidParams, `${method}: ${what} must be ${expected}, got ${typeName(got)}`);
}

function string(v: XmlRpcValue | undefined, method: string, what: string): string {
  if (typeof v !== 'string') throw paramFault(method, what, 'a string', v);
  return v;
}

function array(v: XmlRpcValue | undefined, method: string, what: string): XmlRpcValue[] {
  if (!Array.isArray(v)) throw paramFault(method, what, 'an array', v);
  return v;
}

function strings(v: XmlRpcValue | undefined, method: string, what: string): string[] {
  const items = array(v, method, what);
  for (let i = 0; i < items.length; i++) if (typeof items[i] !== 'string') throw paramFault(method, `${what}[${i}]`, 'a string', items[i]);
  return items as string[];
}

/** The engine's custom properties map: read for its type, not used. Apache writes a null map as <ex:nil/>. */
function properties(v: XmlRpcValue | undefined, method: string): void {
  if (v !== null && !(v instanceof Map)) throw paramFault(method, 'properties', 'a struct', v);
}
