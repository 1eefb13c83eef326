/**
 * HostScorerService's scoring handlers: validate, take a servable snapshot,
 * score on the inventory's view of it, answer. Nothing here touches the engine or
 * knows how data is stored or fetched: that is the inventory's withView.
 */
import type * as grpc from '@grpc/grpc-js';
import type { LimitSettings } from '../config';
import { ScorerError } from '../errors';
import type { HostScorerServiceHandlers } from '../generated/ksmscorer/v1/HostScorerService';
import type { ScoreHostsResult } from '../generated/ksmscorer/v1/ScoreHostsResult';
import type { CallView } from '../inventory/call-view';
import type { CallNeeds, OpenCallSignal, ScoringInventory } from '../inventory/inventory';
import type { Logger } from '../log';
import type { OsIdentity } from '../ovirt/model';
import { type HostScore, scoreCandidates } from '../scoring/score';
import { inventoryMessage } from './inventory-info';
import { createListingHandlers } from './listing-service';
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

/** A query's answer: the hosts' scores and the OS they were scored for. */
export interface QueryScores {
  readonly os: OsIdentity;
  readonly scores: HostScore[];
}

/** Every RPC of HostScorerService: scoring here, the inventory listings in listing-service.ts. */
export function createScorerHandlers(deps: ScorerServiceDeps): HostScorerServiceHandlers {
  const { inventory, limits, logger } = deps;
  return {
    async ScoreHosts(call, callback) {
      try {
        const query = parseScoreRequest(call.request, limits);
        const snapshot = inventory.servableSnapshot();
        const scored = await inventory.withView(snapshot, needsOf([query]), () => callSignal(call), (view) => scoreQuery(view, query));
        if ('notFound' in scored) throw new ScorerError('not_found', `vm_id: ${scored.notFound}`);
        callback(null, { scores: scored.scores, inventory: inventoryMessage(inventory.info(snapshot)), scored_os: scored.os });
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
        const results = await inventory.withView(snapshot, needsOf(queries), () => callSignal(call), (view) => {
          // Queued behind other work while the client left (or a shutdown cut it): do not score for nobody.
          if (call.cancelled) throw new ScorerError('cancelled', 'the call was cancelled before it was scored');
          return items.map((item, i): ScoreHostsResult => {
            const scored = item instanceof ScorerError ? item : scoreQuery(view, item);
            if ('scores' in scored) return { scores: scored.scores, error: null, scored_os: scored.os };
            const err = scored instanceof ScorerError ? scored : new ScorerError('not_found', `requests[${i}].vm_id: ${scored.notFound}`);
            const { code, message } = toStatus(err, logger, `ScoreHostsBatch[${i}]`);
            return { scores: [], error: { code, message }, scored_os: null };
          });
        });
        callback(null, { results, inventory: inventoryMessage(inventory.info(snapshot)) });
      } catch (err) {
        callback(toServiceError(err, logger, 'ScoreHostsBatch'));
      }
    },

    ...createListingHandlers(deps),
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
  return inventory.withView(snapshot, needsOf([query]), () => ({ signal, dispose() {} }), (view) => {
    const scored = scoreQuery(view, query);
    return 'notFound' in scored ? scored : scored.scores;
  });
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

export function scoreQuery(view: CallView, query: ScoreQuery): QueryScores | VmNotFound {
  let os = query.kind === 'os' ? query.os : undefined;
  if (query.kind === 'vm') {
    const vm = view.vm(query.vmId);
    if (vm === undefined) return { notFound: `the oVirt engine has no VM ${query.vmId}` };
    os = vm.os;
  }
  const scoredVmId = query.kind === 'vm' ? query.vmId : undefined;
  return { os: os!, scores: scoreCandidates(view.candidates(query.hostIds, scoredVmId), os!, query.hostIds === undefined) };
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
  // A client cancels its call when its deadline passes, and that can arrive before our own timer fires: then it is the deadline.
  const onCancel = () =>
    controller.abort(
      Number.isFinite(at) && Date.now() >= at - 50
        ? new ScorerError('deadline_exceeded', 'the call deadline passed while waiting for the oVirt engine')
        : new ScorerError('cancelled', 'the client cancelled the call'),
    );
  call.once('cancelled', onCancel);
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      call.off('cancelled', onCancel);
    },
  };
}
