/**
 * HostScorerService's scoring handlers: the scoring service's steps
 * (src/scoring/service.ts: parse, servable snapshot, view, score) on the fast
 * path, where answers are copied from the score tables (src/fast-path/).
 */
import type { LimitSettings } from '../config/load';
import { SETTINGS } from '../config/settings';
import { ScorerError } from '../errors';
import { checkBatchSize, checkBatchRequest } from '../scoring/request';
import { callSignal, servableSnapshot, withQueriesView } from '../scoring/service';
import type { PreparedMessage } from '../fast-path/encode';
import type { WireBatchRequest, WireScoreRequest } from '../fast-path/decode';
import { type IndexedQuery, parseIndexedBatch, parseIndexedRequest } from '../fast-path/indexed-request';
import { ScoreTables } from '../fast-path/score-tables';
import { BatchReply, errorField, ScoreHostsReply, ScoresAnswer } from '../fast-path/table-answers';
import type { HostScorerServiceHandlers } from '../generated/ksmscorer/v1/HostScorerService';
import type { ScoringInventory } from '../inventory/inventory';
import type { Logger } from '../log';
import type { Metrics } from '../metrics/metrics';
import { inventoryMessage } from './inventory-info';
import { createListingHandlers } from './listing-service';
import { toServiceError, toStatus } from './status';

export interface ScorerServiceDeps {
  readonly inventory: ScoringInventory;
  readonly limits: LimitSettings;
  readonly logger: Logger;
  /** Where the score tables report their memory; undefined: metrics off. */
  readonly registry?: Metrics;
}

/** Every RPC of HostScorerService: scoring here, the inventory listings in listing-service.ts. */
export function createScorerHandlers(deps: ScorerServiceDeps): HostScorerServiceHandlers {
  const { inventory, limits, logger, registry } = deps;
  const evicted = registry?.counter(
    'ksm_scorer_score_tables_evicted_total',
    `Score tables dropped to stay within ${SETTINGS.limits.scoreCacheBytes.env} (least recently used OS identity first).`,
  );
  const scoreTables = new ScoreTables(limits.scoreCacheBytes, logger, () => evicted?.inc());
  if (registry !== undefined) reportScoreTables(registry, scoreTables);
  return {
    // oxlint-disable-next-line typescript/no-misused-promises -- it catches everything and answers through callback
    async ScoreHosts(call, callback) {
      try {
        const req = call.request as WireScoreRequest;
        // A bad request is told so before an inventory that is not ready, as it always was.
        const snapshot = servableSnapshot(inventory, limits, req);
        const tables = scoreTables.of(snapshot);
        const query = parseIndexedRequest(req, tables, limits);
        const answer = await withQueriesView(
          inventory,
          snapshot,
          [query],
          () => callSignal(call),
          (view) => ScoresAnswer.plan(view, tables, query),
        );
        if ('notFound' in answer) throw new ScorerError('not_found', `vm_id: ${answer.notFound}`);
        callback(null, prepared(new ScoreHostsReply(answer, inventoryMessage(inventory.info(snapshot)))));
      } catch (err) {
        callback(toServiceError(err, logger, 'ScoreHosts'));
      }
    },

    // oxlint-disable-next-line typescript/no-misused-promises -- it catches everything and answers through callback
    async ScoreHostsBatch(call, callback) {
      try {
        const batch = call.request as WireBatchRequest;
        checkBatchRequest(batch, limits);
        const snapshot = servableSnapshot(inventory, limits);
        const tables = scoreTables.of(snapshot);
        const items = parseIndexedBatch(batch.requests, tables, limits);
        checkBatchSize(
          items.map((item) => (item instanceof ScorerError ? 0 : item.positions?.length)),
          snapshot.hostCount,
          limits,
        );
        const queries = items.filter((item): item is IndexedQuery => !(item instanceof ScorerError));
        const answers = await withQueriesView(
          inventory,
          snapshot,
          queries,
          () => callSignal(call),
          (view) => {
            // Queued behind other work while the client left (or a shutdown cut it): do not score for nobody.
            if (call.cancelled) throw new ScorerError('cancelled', 'the call was cancelled before it was scored');
            return items.map((item, i): ScoresAnswer | Buffer => {
              const scored = item instanceof ScorerError ? item : ScoresAnswer.plan(view, tables, item);
              if (scored instanceof ScoresAnswer) return scored;
              const err = scored instanceof ScorerError ? scored : new ScorerError('not_found', `requests[${i}].vm_id: ${scored.notFound}`);
              const { code, message } = toStatus(err, logger, `ScoreHostsBatch[${i}]`);
              return errorField(code, message);
            });
          },
        );
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
  registry.gauge(
    'ksm_scorer_score_table_bytes',
    `Memory the score tables hold, by part: tables (entries and whole answers), host_lists (lists remembered by their bytes), index (host id index); the first two within ${SETTINGS.limits.scoreCacheBytes.env}.`,
    ['part'],
    function collect() {
      const s = tables.stats();
      this.set({ part: 'tables' }, s.bytes);
      this.set({ part: 'host_lists' }, s.listBytes);
      this.set({ part: 'index' }, s.indexBytes);
    },
  );
  registry.gauge(
    'ksm_scorer_score_tables',
    'Score tables kept: one per OS identity asked for on the current inventory.',
    [],
    function collect() {
      this.set(tables.stats().tables);
    },
  );
}

/** A reply that writes itself when serialized (codec.ts, PreparedMessage), where grpc-js's types expect a message object. */
const prepared = <T>(reply: PreparedMessage): T => reply as unknown as T;
