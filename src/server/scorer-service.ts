/**
 * HostScorerService handlers: validate, take the current snapshot, resolve
 * what the call needs into one CallView, score, answer. Nothing here touches
 * the engine directly or knows how data is stored.
 */
import type * as grpc from '@grpc/grpc-js';
import { ScorerError } from '../errors';
import type { HostScorerServiceHandlers } from '../generated/ksmscorer/v1/HostScorerService';
import type { InventoryInfo as InventoryInfoMessage } from '../generated/ksmscorer/v1/InventoryInfo';
import type { ScoreHostsResult } from '../generated/ksmscorer/v1/ScoreHostsResult';
import { CacheMiss, type CallView } from '../inventory/call-view';
import type { CallNeeds, HostInventory, InventoryInfo } from '../inventory/inventory';
import type { InventorySnapshot } from '../inventory/snapshot';
import type { Logger } from '../log';
import { type HostScore, scoreCandidates } from '../scoring/score';
import { parseScoreRequest, type RequestLimits, type ScoreQuery } from './request';
import { toServiceError, toStatus } from './status';

export interface ScorerServiceDeps {
  readonly inventory: HostInventory;
  readonly limits: RequestLimits & {
    readonly maxBatchRequests: number;
    /** Most host scores one batch may ask for: scoring runs in one go, so this bounds how long it holds the service. */
    readonly maxBatchHostScores: number;
  };
  readonly logger: Logger;
}

export function createScorerHandlers({ inventory, limits, logger }: ScorerServiceDeps): HostScorerServiceHandlers {
  return {
    async ScoreHosts(call, callback) {
      try {
        const query = parseScoreRequest(call.request, limits);
        const snapshot = inventory.servableSnapshot();
        const scores = await scoreWithin(inventory, call, snapshot, [query], (view) => scoreQuery(view, query));
        callback(null, { scores, inventory: inventoryMessage(inventory.info(snapshot)) });
      } catch (err) {
        callback(toServiceError(err, logger, 'ScoreHosts'));
      }
    },

    async ScoreHostsBatch(call, callback) {
      try {
        const batch = call.request as typeof call.request & { readonly malformed?: string };
        if (batch.malformed !== undefined) throw new ScorerError('invalid_argument', `request: not a valid ScoreHostsBatchRequest message (${batch.malformed})`);
        const requests = batch.requests ?? [];
        if (requests.length > limits.maxBatchRequests) {
          throw new ScorerError('invalid_argument', `requests: ${requests.length} items, more than the maximum of ${limits.maxBatchRequests}`);
        }
        const parsed = requests.map((req, i): ScoreQuery | ScorerError => {
          try {
            return parseScoreRequest(req, limits, `requests[${i}].`);
          } catch (err) {
            return ScorerError.from(err);
          }
        });
        const snapshot = inventory.servableSnapshot();
        const queries = parsed.filter((p): p is ScoreQuery => !(p instanceof ScorerError));
        let hostScores = 0;
        for (const q of queries) hostScores += q.hostIds?.length ?? snapshot.hostCount;
        if (hostScores > limits.maxBatchHostScores) {
          throw new ScorerError(
            'invalid_argument',
            `requests: ${hostScores} host scores in one batch (empty host_ids count every host), more than the maximum of ${limits.maxBatchHostScores}; split the batch`,
          );
        }
        const results = await scoreWithin(inventory, call, snapshot, queries, (view) =>
          parsed.map((item, i): ScoreHostsResult => {
            try {
              if (item instanceof ScorerError) throw item;
              return { scores: scoreQuery(view, item), error: null };
            } catch (err) {
              if (err instanceof CacheMiss) throw err;
              const { code, message } = toStatus(err, logger, `ScoreHostsBatch[${i}]`);
              return { scores: [], error: { code, message } };
            }
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
 * Scores from the snapshot's cache in this same synchronous run when it
 * holds everything (the usual case: no copies, no signal); otherwise fetches
 * what is missing, bounded by the call's deadline, then scores.
 */
async function scoreWithin<T>(
  inventory: HostInventory,
  call: grpc.ServerUnaryCall<unknown, unknown>,
  snapshot: InventorySnapshot,
  queries: readonly ScoreQuery[],
  score: (view: CallView) => T,
): Promise<T> {
  const need = needs(queries);
  const cached = inventory.resolveCached(snapshot, need);
  if (cached !== undefined) {
    try {
      return score(cached);
    } catch (err) {
      if (!(err instanceof CacheMiss)) throw err;
    }
  }
  const signal = callSignal(call);
  try {
    return score(await inventory.resolve(snapshot, need, signal.signal));
  } finally {
    signal.dispose();
  }
}

function needs(queries: readonly ScoreQuery[]): CallNeeds {
  if (queries.length === 1) {
    // One query: its ids as they are (resolve skips repeats), no Set to build.
    const q = queries[0]!;
    return { hostIds: q.hostIds ?? [], vmIds: q.kind === 'vm' ? [q.vmId] : [], allHosts: q.hostIds === undefined };
  }
  const hostIds = new Set<string>();
  const vmIds = new Set<string>();
  let allHosts = false;
  for (const q of queries) {
    if (q.kind === 'vm') vmIds.add(q.vmId);
    if (q.hostIds === undefined) allHosts = true;
    else for (const id of q.hostIds) hostIds.add(id);
  }
  return { hostIds, vmIds, allHosts };
}

function scoreQuery(view: CallView, query: ScoreQuery): HostScore[] {
  let os = query.kind === 'os' ? query.os : undefined;
  if (query.kind === 'vm') {
    const vm = view.vm(query.vmId);
    if (vm === undefined) throw new ScorerError('not_found', `vm_id: the oVirt engine has no VM ${query.vmId}`);
    os = vm.os;
  }
  const scoredVmId = query.kind === 'vm' ? query.vmId : undefined;
  return scoreCandidates(view.candidates(query.hostIds, scoredVmId), os!, query.hostIds === undefined);
}

export function inventoryMessage(info: InventoryInfo): InventoryInfoMessage {
  return {
    refreshed_at: { seconds: String(Math.floor(info.refreshedAt / 1000)), nanos: (info.refreshedAt % 1000) * 1_000_000 },
    stale: info.stale,
    generation: String(info.generation),
    host_count: info.hostCount,
    vm_count: info.vmCount,
  };
}

/** An AbortSignal that fires at the call's deadline or when the client cancels. */
function callSignal(call: grpc.ServerUnaryCall<unknown, unknown>): { signal: AbortSignal; dispose(): void } {
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
