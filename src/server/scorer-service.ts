/**
 * HostScorerService handlers: validate, take a servable snapshot, score on
 * the inventory's view of it, answer. Nothing here touches the engine or
 * knows how data is stored or fetched: that is the inventory's withView.
 */
import type * as grpc from '@grpc/grpc-js';
import type { LimitSettings } from '../config';
import { ScorerError } from '../errors';
import type { HostScorerServiceHandlers } from '../generated/ksmscorer/v1/HostScorerService';
import type { InventoryInfo as InventoryInfoMessage } from '../generated/ksmscorer/v1/InventoryInfo';
import type { ScoreHostsResult } from '../generated/ksmscorer/v1/ScoreHostsResult';
import type { CallView } from '../inventory/call-view';
import type { CallNeeds, InventoryInfo, OpenCallSignal, ScoringInventory } from '../inventory/inventory';
import type { Logger } from '../log';
import { type HostScore, scoreCandidates } from '../scoring/score';
import { checkBatchSize, parseBatchRequest, parseScoreRequest, type ScoreQuery } from './request';
import { toServiceError, toStatus } from './status';

export interface ScorerServiceDeps {
  readonly inventory: ScoringInventory;
  readonly limits: LimitSettings;
  readonly logger: Logger;
}

/** The VM a query names is not known to the engine: a result, not an exception. */
export interface VmNotFound {
  readonly notFound: string;
}

export function createScorerHandlers({ inventory, limits, logger }: ScorerServiceDeps): HostScorerServiceHandlers {
  return {
    async ScoreHosts(call, callback) {
      try {
        const query = parseScoreRequest(call.request, limits);
        const snapshot = inventory.servableSnapshot();
        const scores = await inventory.withView(snapshot, needsOf([query]), () => callSignal(call), (view) => scoreQuery(view, query));
        if ('notFound' in scores) throw new ScorerError('not_found', `vm_id: ${scores.notFound}`);
        callback(null, { scores, inventory: inventoryMessage(inventory.info(snapshot)) });
      } catch (err) {
        callback(toServiceError(err, logger, 'ScoreHosts'));
      }
    },

    async ScoreHostsBatch(call, callback) {
      try {
        const items = parseBatchRequest(call.request, limits);
        const snapshot = inventory.servableSnapshot();
        checkBatchSize(items, snapshot.hostCount, limits);
        const queries = items.filter((item): item is ScoreQuery => !(item instanceof ScorerError));
        const results = await inventory.withView(snapshot, needsOf(queries), () => callSignal(call), (view) =>
          items.map((item, i): ScoreHostsResult => {
            const scores = item instanceof ScorerError ? item : scoreQuery(view, item);
            if (Array.isArray(scores)) return { scores, error: null };
            const err = scores instanceof ScorerError ? scores : new ScorerError('not_found', `requests[${i}].vm_id: ${scores.notFound}`);
            const { code, message } = toStatus(err, logger, `ScoreHostsBatch[${i}]`);
            return { scores: [], error: { code, message } };
          }),
        );
        callback(null, { results, inventory: inventoryMessage(inventory.info(snapshot)) });
      } catch (err) {
        callback(toServiceError(err, logger, 'ScoreHostsBatch'));
      }
    },
  };
}

/**
 * ScoreHosts for one VM by id and named hosts, for front ends other than
 * gRPC (the engine's scheduler proxy): the same validation, snapshot, view
 * and scoring, bounded by `signal` instead of a call deadline.
 */
export async function scoreVmOnHosts(
  { inventory, limits }: Pick<ScorerServiceDeps, 'inventory' | 'limits'>,
  vmId: string,
  hostIds: readonly string[],
  signal: AbortSignal,
): Promise<HostScore[] | VmNotFound> {
  const query = parseScoreRequest({ vm: 'vm_id', vm_id: vmId, host_ids: [...hostIds] }, limits);
  const snapshot = inventory.servableSnapshot();
  return inventory.withView(snapshot, needsOf([query]), () => ({ signal, dispose() {} }), (view) => scoreQuery(view, query));
}

/** The ids the queries read; an empty host list reads the snapshot's own hosts, which need nothing. */
function needsOf(queries: readonly ScoreQuery[]): CallNeeds {
  if (queries.length === 1) {
    // One query: its ids as they are (repeats are skipped by the reader), no Set to build.
    const q = queries[0]!;
    return { hostIds: q.hostIds ?? [], vmIds: q.kind === 'vm' ? [q.vmId] : [] };
  }
  const hostIds = new Set<string>();
  const vmIds = new Set<string>();
  for (const q of queries) {
    if (q.kind === 'vm') vmIds.add(q.vmId);
    if (q.hostIds !== undefined) for (const id of q.hostIds) hostIds.add(id);
  }
  return { hostIds, vmIds };
}

export function scoreQuery(view: CallView, query: ScoreQuery): HostScore[] | VmNotFound {
  let os = query.kind === 'os' ? query.os : undefined;
  if (query.kind === 'vm') {
    const vm = view.vm(query.vmId);
    if (vm === undefined) return { notFound: `the oVirt engine has no VM ${query.vmId}` };
    os = vm.os;
  }
  const scoredVmId = query.kind === 'vm' ? query.vmId : undefined;
  return scoreCandidates(view.candidates(query.hostIds, scoredVmId), os!, query.hostIds === undefined);
}

export function inventoryMessage(info: InventoryInfo): InventoryInfoMessage {
  return {
    refreshed_at: { seconds: Math.floor(info.refreshedAt / 1000), nanos: (info.refreshedAt % 1000) * 1_000_000 },
    stale: info.stale,
    generation: info.generation,
    host_count: info.hostCount,
    vm_count: info.vmCount,
  };
}

/** An AbortSignal that fires at the call's deadline or when the client cancels. */
function callSignal(call: grpc.ServerUnaryCall<unknown, unknown>): ReturnType<OpenCallSignal> {
  const controller = new AbortController();
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  let timer: NodeJS.Timeout | undefined;
  if (Number.isFinite(at)) {
    timer = setTimeout(
      () => controller.abort(new ScorerError('deadline_exceeded', 'the call deadline passed while waiting for the oVirt engine')),
      Math.max(0, at - Date.now()),
    );
  }
  const onCancel = () => controller.abort(new ScorerError('cancelled', 'the client cancelled the call'));
  call.once('cancelled', onCancel);
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      call.off('cancelled', onCancel);
    },
  };
}
