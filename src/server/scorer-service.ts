/**
 * HostScorerService's scoring handlers: validate, take a servable snapshot,
 * score on the inventory's view of it, answer. Nothing here touches the engine or
 * knows how data is stored or fetched: that is the inventory's withView. Answers
 * are copied from the score tables (score-tables.ts, table-answers.ts).
 */
import type * as grpc from '@grpc/grpc-js';
import type { LimitSettings } from '../config/load';
import { ScorerError } from '../errors';
import type { HostScorerServiceHandlers } from '../generated/ksmscorer/v1/HostScorerService';
import type { CallView } from '../inventory/call-view';
import type { CallNeeds, OpenCallSignal, ScoringInventory } from '../inventory/inventory';
import type { InventorySnapshot } from '../inventory/snapshot';
import type { Logger } from '../log';
import type { Metrics } from '../metrics/metrics';
import type { OsIdentity } from '../ovirt/model';
import { type HostScore, scoreCandidates } from '../scoring/score';
import type { PreparedMessage, WireBatchRequest, WireScoreRequest } from './codec';
import { inventoryMessage } from './inventory-info';
import { createListingHandlers } from './listing-service';
import { checkBatchRequest, checkBatchSize, type IndexedQuery, parseIndexedBatch, parseIndexedRequest, parseScoreRequest, type ScoreQuery } from './request';
import { ScoreTables } from './score-tables';
import { BatchReply, errorField, noSuchVm, ScoreHostsReply, ScoresAnswer, type VmNotFound } from './table-answers';
import { toServiceError, toStatus } from './status';

export interface ScorerServiceDeps {
  readonly inventory: ScoringInventory;
  readonly limits: LimitSettings;
  readonly logger: Logger;
  /** Where the score tables report their memory; undefined: metrics off. */
  readonly registry?: Metrics;
}

export type { VmNotFound } from './table-answers';

/** A query's answer: the hosts' scores and the OS they were scored for. */
export interface QueryScores {
  readonly os: OsIdentity;
  readonly scores: HostScore[];
}

/** Every RPC of HostScorerService: scoring here, the inventory listings in listing-service.ts. */
export function createScorerHandlers(deps: ScorerServiceDeps): HostScorerServiceHandlers {
  const { inventory, limits, logger, registry } = deps;
  const evicted = registry?.counter('ksm_scorer_score_tables_evicted_total', 'Score tables dropped to stay within KSM_SCORER_SCORE_CACHE_MB (least recently used OS identity first).');
  const scoreTables = new ScoreTables(limits.scoreCacheBytes, logger, () => evicted?.inc());
  if (registry !== undefined) reportScoreTables(registry, scoreTables);
  return {
    async ScoreHosts(call, callback) {
      try {
        const req = call.request as WireScoreRequest;
        // A bad request is told so before an inventory that is not ready, as it always was.
        const snapshot = servable(inventory, () => parseScoreRequest(req, limits));
        const tables = scoreTables.of(snapshot);
        const query = parseIndexedRequest(req, tables, limits);
        const answer = await inventory.withView(snapshot, needsOf([query]), () => callSignal(call), (view) => ScoresAnswer.plan(view, tables, query));
        if ('notFound' in answer) throw new ScorerError('not_found', `vm_id: ${answer.notFound}`);
        callback(null, prepared(new ScoreHostsReply(answer, inventoryMessage(inventory.info(snapshot)))));
      } catch (err) {
        callback(toServiceError(err, logger, 'ScoreHosts'));
      }
    },

    async ScoreHostsBatch(call, callback) {
      try {
        const batch = call.request as WireBatchRequest;
        checkBatchRequest(batch, limits);
        const snapshot = inventory.servableSnapshot();
        const tables = scoreTables.of(snapshot);
        const items = parseIndexedBatch(batch.requests, tables, limits);
        checkBatchSize(items.map((item) => (item instanceof ScorerError ? 0 : item.positions?.length)), snapshot.hostCount, limits);
        const queries = items.filter((item): item is IndexedQuery => !(item instanceof ScorerError));
        const answers = await inventory.withView(snapshot, needsOf(queries), () => callSignal(call), (view) => {
          // Queued behind other work while the client left (or a shutdown cut it): do not score for nobody.
          if (call.cancelled) throw new ScorerError('cancelled', 'the call was cancelled before it was scored');
          return items.map((item, i): ScoresAnswer | Buffer => {
            const scored = item instanceof ScorerError ? item : ScoresAnswer.plan(view, tables, item);
            if (scored instanceof ScoresAnswer) return scored;
            const err = scored instanceof ScorerError ? scored : new ScorerError('not_found', `requests[${i}].vm_id: ${scored.notFound}`);
            const { code, message } = toStatus(err, logger, `ScoreHostsBatch[${i}]`);
            return errorField(code, message);
          });
        });
        callback(null, prepared(new BatchReply(answers, inventoryMessage(inventory.info(snapshot)))));
      } catch (err) {
        callback(toServiceError(err, logger, 'ScoreHostsBatch'));
      }
    },

    ...createListingHandlers(deps),
  };
}

/** The score tables' memory, read at scrape time. */
function reportScoreTables(registry: Metrics, tables: ScoreTables): void {
  registry.gauge('ksm_scorer_score_table_bytes', 'Memory the score tables hold, by part: tables (entries and whole answers), host_lists (lists remembered by their bytes), index (host id index); the first two within KSM_SCORER_SCORE_CACHE_MB.', ['part'], function collect() {
    const s = tables.stats();
    this.set({ part: 'tables' }, s.bytes);
    this.set({ part: 'host_lists' }, s.listBytes);
    this.set({ part: 'index' }, s.indexBytes);
  });
  registry.gauge('ksm_scorer_score_tables', 'Score tables kept: one per OS identity asked for on the current inventory.', [], function collect() {
    this.set(tables.stats().tables);
  });
}

/** The snapshot to answer from; when there is none, `validate` runs first, so a bad request hears about itself. */
function servable(inventory: ScoringInventory, validate: () => void): InventorySnapshot {
  try {
    return inventory.servableSnapshot();
  } catch (err) {
    validate();
    throw err;
  }
}

/** A reply that writes itself when serialized (codec.ts, PreparedMessage), where grpc-js's types expect a message object. */
const prepared = <T>(reply: PreparedMessage): T => reply as unknown as T;

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
  return inventory.withView(snapshot, { hostIds: query.hostIds ?? [], vmIds: query.kind === 'vm' ? [query.vmId] : [] }, () => ({ signal, dispose() {} }), (view) => {
    const scored = scoreQuery(view, query);
    return 'notFound' in scored ? scored : scored.scores;
  });
}

/** The ids the queries read beyond the index (only those can be missing from the snapshot); repeats are skipped by the reader. */
function needsOf(queries: readonly IndexedQuery[]): CallNeeds {
  if (queries.length === 1) {
    const q = queries[0]!;
    return { hostIds: q.otherIds, vmIds: q.kind === 'vm' ? [q.vmId] : [] };
  }
  const hostIds: string[] = [];
  const vmIds: string[] = [];
  let previous: readonly string[] | undefined;
  for (const q of queries) {
    if (q.kind === 'vm') vmIds.push(q.vmId);
    // A run of items naming the same hosts shares one array: read it once.
    if (q.otherIds !== previous) for (const id of q.otherIds) hostIds.push(id);
    previous = q.otherIds;
  }
  return { hostIds, vmIds };
}

/** Scores as objects, from the view: for front ends other than gRPC, and the reference the score tables are tested against. */
export function scoreQuery(view: CallView, query: ScoreQuery): QueryScores | VmNotFound {
  let os = query.kind === 'os' ? query.os : undefined;
  if (query.kind === 'vm') {
    const vm = view.vm(query.vmId);
    if (vm === undefined) return noSuchVm(query.vmId);
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
