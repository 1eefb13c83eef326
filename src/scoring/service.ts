/**
 * The scoring service every front end calls: parse -> snapshot -> view ->
 * score. A call takes a servable snapshot (a bad request hears about itself
 * first), then a view holding what its queries read (now, or after engine
 * reads bounded by the call's signal), and scores on that view. gRPC answers
 * from the score tables (src/fast-path/) on the same steps; the engine's
 * scheduler proxy gets scores as objects (scoreVmOnHosts). Nothing here
 * touches the engine or knows how data is stored or fetched.
 */
import { ScorerError } from '../errors';
import type { OsIdentity } from '../ovirt/model';
import { parseScoreRequest, type RequestLimits, type ScoreQuery, type ScoreRequest, type ScoreTarget } from './request';
import { type HostScore, scoreCandidates } from './score';
import type { CallNeeds, OpenCallSignal, ScoredSnapshot, ScoringView, ServedSnapshots } from './view';

/** The VM a query names is not known to the engine: a result, not an exception. */
export interface VmNotFound {
  readonly notFound: string;
}

export const noSuchVm = (vmId: string): VmNotFound => ({ notFound: `the oVirt engine has no VM ${vmId}` });

/** A query's answer: the hosts' scores and the OS they were scored for. */
export interface QueryScores {
  readonly os: OsIdentity;
  readonly scores: HostScore[];
}

/** What a query reads beyond the snapshot's host list: its VM, and the host ids the list may lack (only those can be missing). */
export type QueryReads = ScoreTarget & { readonly otherIds: readonly string[] };

/** The snapshot to answer `request` from; when there is none, the request is validated first, so a bad request hears about itself. */
export function servableSnapshot<S extends ScoredSnapshot>(
  inventory: ServedSnapshots<S>,
  limits: RequestLimits,
  request?: ScoreRequest,
): S {
  try {
    return inventory.servableSnapshot();
  } catch (err) {
    if (request !== undefined) parseScoreRequest(request, limits);
    throw err;
  }
}

/** Runs `score` on a view of `snapshot` holding what `queries` read: now, or after reading the rest from the engine within `openSignal`. */
export function withQueriesView<S extends ScoredSnapshot, T>(
  inventory: ServedSnapshots<S>,
  snapshot: S,
  queries: readonly QueryReads[],
  openSignal: OpenCallSignal,
  score: (view: ScoringView) => T,
): T | Promise<T> {
  return inventory.withView(snapshot, needsOf(queries), openSignal, score);
}

/**
 * ScoreHosts for one VM by id and named hosts, for front ends other than
 * gRPC (the engine's scheduler proxy): the same validation, snapshot, view
 * and scoring, bounded by `signal` instead of a call deadline.
 */
export async function scoreVmOnHosts<S extends ScoredSnapshot>(
  { inventory, limits }: { readonly inventory: ServedSnapshots<S>; readonly limits: RequestLimits },
  vmId: string,
  hostIds: readonly string[],
  signal: AbortSignal,
): Promise<HostScore[] | VmNotFound> {
  const query = parseScoreRequest({ vm: 'vm_id', vm_id: vmId, host_ids: [...hostIds] }, limits);
  const snapshot = inventory.servableSnapshot();
  return withQueriesView(
    inventory,
    snapshot,
    [{ ...query, otherIds: query.hostIds ?? [] }],
    () => ({ signal, dispose() {} }),
    (view) => {
      const scored = scoreQuery(view, query);
      return 'notFound' in scored ? scored : scored.scores;
    },
  );
}

/** Scores as objects, from the view: for front ends other than gRPC, and the reference the score tables are tested against. */
export function scoreQuery(view: ScoringView, query: ScoreQuery): QueryScores | VmNotFound {
  let os = query.kind === 'os' ? query.os : undefined;
  if (query.kind === 'vm') {
    const vm = view.vm(query.vmId);
    if (vm === undefined) return noSuchVm(query.vmId);
    os = vm.os;
  }
  const scoredVmId = query.kind === 'vm' ? query.vmId : undefined;
  return { os: os!, scores: scoreCandidates(view.candidates(query.hostIds, scoredVmId), os!, query.hostIds === undefined) };
}

/** The ids the queries read beyond the snapshot's host list (only those can be missing from the snapshot); repeats are skipped by the reader. */
export function needsOf(queries: readonly QueryReads[]): CallNeeds {
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

/** A call with a deadline that its client may cancel (a grpc-js server call is one). */
export interface WaitingCall {
  /** Date or epoch ms; Infinity: none. */
  getDeadline(): Date | number;
  once(event: 'cancelled', listener: () => void): unknown;
  off(event: 'cancelled', listener: () => void): unknown;
}

/** The engine-wait signal of `call`: an AbortSignal that fires at the call's deadline or when the client cancels. */
export function callSignal(call: WaitingCall): ReturnType<OpenCallSignal> {
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
