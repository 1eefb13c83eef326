/**
 * The score tables give byte for byte what scoring and encoding each host
 * gives (today's path, composed below from scoreQuery and the codec): random
 * inventories, their next generations and no-change polls, random requests and
 * batches (self-exclusion, unknown and on-demand hosts, repeated and upper-case
 * ids, empty host lists, bad ids, stale answers), under tight and loose memory limits.
 * Then the real service over gRPC: remembered host lists never let an invalid list through, and
 * tables and lists hold no more memory than ksm_scorer_score_table_bytes reports.
 */
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { LimitSettings } from '../../src/config/load';
import { loadConfig } from '../../src/config/load';
import { ScorerError } from '../../src/errors';
import { CallView, type OnDemandHost } from '../../src/inventory/call-view';
import type { CallNeeds, InventoryInfo, OpenCallSignal, ScoringInventory } from '../../src/inventory/inventory';
import {
  applyChanges,
  type InventoryChanges,
  type InventorySnapshot,
  SnapshotBuilder,
  type VmPlacement,
} from '../../src/inventory/snapshot';
import { silentLogger } from '../../src/log';
import type { EngineHost, EngineVm, OsIdentity } from '../../src/ovirt/model';
import { HostOsCounts } from '../../src/scoring/os-counts';
import { decodeScoreHostsBatchRequest, decodeScoreHostsRequest } from '../../src/fast-path/decode';
import { encodeScoreHostsBatchResponse, encodeScoreHostsResponse, type PreparedMessage } from '../../src/fast-path/encode';
import { HostIdIndex } from '../../src/fast-path/host-id-index';
import { parseIndexedRequest } from '../../src/fast-path/indexed-request';
import type { OsTable } from '../../src/fast-path/os-table';
import { ScoreTables } from '../../src/fast-path/score-tables';
import { inventoryMessage } from '../../src/server/inventory-info';
import { PROTO_ROOT, SCORER_PROTO } from '../../src/contract/proto';
import { checkBatchRequest, checkBatchSize, parseBatchItems, parseScoreRequest, type ScoreQuery } from '../../src/scoring/request';
import { scoreQuery } from '../../src/scoring/service';
import { createScorerHandlers } from '../../src/server/scorer-service';
import { toStatus } from '../../src/server/status';
import { seededRandom, seededUuid } from '../../src/simulator/random';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { type Scorer, startScorer, startSimulator, unary } from '../helpers';
import { field, grpcFrame, rawCall, SCORE_HOSTS, SCORE_HOSTS_BATCH } from '../raw-grpc';

const root = new protobuf.Root().loadSync(join(PROTO_ROOT, SCORER_PROTO), { keepCase: true });
const Request = root.lookupType('ksmscorer.v1.ScoreHostsRequest');
const BatchRequest = root.lookupType('ksmscorer.v1.ScoreHostsBatchRequest');

const TYPES = ['rhel_8x64', 'rhel_9x64', 'windows_2022', 'other_linux'];
const VERSIONS = ['', '8.6', '9.2', 'Red Hat Enterprise Linux 9.2'];

type Random = () => number;
const pick = <T>(random: Random, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
const randomOs = (random: Random): OsIdentity => ({ type: pick(random, TYPES), version: pick(random, VERSIONS) });
const upper = (id: string) => id.toUpperCase();

/** What the engine has beyond the snapshot: hosts and VMs read on demand (undefined: the engine has no such host). */
interface Extras {
  readonly hosts: Map<string, OnDemandHost | undefined>;
  readonly vms: Map<string, VmPlacement>;
}

/**
 * A ScoringInventory over a fixed snapshot: withView gives the view of
 * exactly what `needs` names (so a fast path that forgot to name an id would
 * see that host as unknown), now or after a tick.
 */
class FixedInventory implements ScoringInventory {
  constructor(
    public snapshot: InventorySnapshot,
    private readonly extras: Extras,
    public stale: boolean,
    public ready: boolean,
    public async: boolean,
  ) {}

  servableSnapshot(): InventorySnapshot {
    if (!this.ready) throw new ScorerError('not_ready', 'the inventory has not loaded from the oVirt engine yet; try again shortly');
    return this.snapshot;
  }

  info(s: InventorySnapshot): InventoryInfo {
    return { refreshedAt: s.refreshedAt, stale: this.stale, generation: s.generation, hostCount: s.hostCount, vmCount: s.vmCount };
  }

  withView<T>(s: InventorySnapshot, needs: CallNeeds, _open: OpenCallSignal, use: (view: CallView) => T): T | Promise<T> {
    const hosts = new Map<string, OnDemandHost | undefined>();
    for (const id of needs.hostIds) if (!s.hosts.has(id)) hosts.set(id, this.extras.hosts.get(id));
    const vms = new Map<string, VmPlacement | undefined>();
    for (const id of needs.vmIds) if (s.vms.get(id) === undefined) vms.set(id, this.extras.vms.get(id));
    const view = new CallView(s, hosts, vms);
    return this.async ? Promise.resolve().then(() => use(view)) : use(view);
  }

  operatingSystems(): never {
    throw new Error('not used');
  }
  hosts(): never {
    throw new Error('not used');
  }
  vms(): never {
    throw new Error('not used');
  }
}

type Outcome = { bytes: Buffer } | { code: number; message: string };

/** Today's path: ScoreHosts scored host by host (scoreQuery) and encoded whole. */
function referenceScoreHosts(inv: FixedInventory, limits: LimitSettings, body: Buffer): Promise<Outcome> {
  return outcome(async () => {
    const query = parseScoreRequest(decodeScoreHostsRequest(body), limits);
    const snapshot = inv.servableSnapshot();
    const scored = await inv.withView(snapshot, needsOf([query]), noSignal, (view) => scoreQuery(view, query));
    if ('notFound' in scored) throw new ScorerError('not_found', `vm_id: ${scored.notFound}`);
    return encodeScoreHostsResponse({ scores: scored.scores, inventory: inventoryMessage(inv.info(snapshot)), scored_os: scored.os });
  });
}

/** Today's path for ScoreHostsBatch. */
function referenceBatch(inv: FixedInventory, limits: LimitSettings, body: Buffer): Promise<Outcome> {
  return outcome(async () => {
    const batch = decodeScoreHostsBatchRequest(body);
    checkBatchRequest(batch, limits);
    const items = parseBatchItems(batch.requests, (req, prefix) => parseScoreRequest(req, limits, prefix));
    const snapshot = inv.servableSnapshot();
    checkBatchSize(
      items.map((item) => (item instanceof ScorerError ? 0 : item.hostIds?.length)),
      snapshot.hostCount,
      limits,
    );
    const queries = items.filter((item): item is ScoreQuery => !(item instanceof ScorerError));
    const results = await inv.withView(snapshot, needsOf(queries), noSignal, (view) =>
      items.map((item, i) => {
        const scored = item instanceof ScorerError ? item : scoreQuery(view, item);
        if ('scores' in scored) return { scores: scored.scores, error: null, scored_os: scored.os };
        const err = scored instanceof ScorerError ? scored : new ScorerError('not_found', `requests[${i}].vm_id: ${scored.notFound}`);
        return { scores: [], error: toStatus(err, silentLogger, ''), scored_os: null };
      }),
    );
    return encodeScoreHostsBatchResponse({ results, inventory: inventoryMessage(inv.info(snapshot)) });
  });
}

const noSignal: OpenCallSignal = () => ({ signal: new AbortController().signal, dispose() {} });

function needsOf(queries: readonly ScoreQuery[]): CallNeeds {
  return {
    hostIds: new Set(queries.flatMap((q) => q.hostIds ?? [])),
    vmIds: new Set(queries.flatMap((q) => (q.kind === 'vm' ? [q.vmId] : []))),
  };
}

async function outcome(answer: () => Promise<Buffer>): Promise<Outcome> {
  try {
    return { bytes: await answer() };
  } catch (err) {
    return toStatus(err, silentLogger, '');
  }
}

/** The service's handler, called as grpc-js calls it, with the request its deserializer made. */
function viaHandler(
  handlers: ReturnType<typeof createScorerHandlers>,
  method: 'ScoreHosts' | 'ScoreHostsBatch',
  body: Buffer,
): Promise<Outcome> {
  const request = method === 'ScoreHosts' ? decodeScoreHostsRequest(body) : decodeScoreHostsBatchRequest(body);
  const call = { request, getDeadline: () => Infinity, once() {}, off() {} };
  return new Promise((resolve) => {
    const callback = (err: Partial<grpc.ServiceError> | null, value?: unknown) => {
      if (err) resolve({ code: err.code!, message: err.details! });
      // Serialized as grpc-js does, and copied at once as it does (the bytes may be a buffer the next reply reuses).
      else
        resolve({
          bytes: Buffer.from(
            method === 'ScoreHosts'
              ? encodeScoreHostsResponse(value as PreparedMessage)
              : encodeScoreHostsBatchResponse(value as PreparedMessage),
          ),
        });
    };
    void (handlers[method] as (c: unknown, cb: typeof callback) => Promise<void>)(call, callback);
  });
}

interface World {
  readonly snapshots: InventorySnapshot[];
  readonly extras: Extras;
  /** Ids a request may name. */
  readonly hostIds: string[];
  readonly vmIds: string[];
}

/** A random inventory, a no-change poll of it, and a next generation with VMs moved, stopped, added and a host gone. */
function randomWorld(random: Random): World {
  const hostCount = Math.floor(random() * 25);
  const hosts: EngineHost[] = Array.from({ length: hostCount }, () => ({
    id: seededUuid(random),
    name: 'h',
    clusterId: undefined,
    status: 'up',
  }));
  // Ids not in canonical form are never found by bytes: the index must not take them for valid.
  if (random() < 0.2) hosts.push({ id: upper(seededUuid(random)), name: 'H', clusterId: undefined, status: 'up' });
  const vms: EngineVm[] = Array.from({ length: Math.floor(random() * 150) }, () => ({
    id: seededUuid(random),
    hostId: hosts.length > 0 && random() < 0.85 ? pick(random, hosts).id : undefined,
    os: randomOs(random),
  }));
  const builder = new SnapshotBuilder(hosts, []);
  builder.addVms(vms);
  const first = builder.build({ generation: 1 + Math.floor(random() * 1000), refreshedAt: 1.7e12 + Math.floor(random() * 1e9) });
  const poll = Object.freeze({ ...first, refreshedAt: first.refreshedAt + 5_000 });

  const vmChanges = new Map<string, EngineVm | null>();
  for (let i = 0; i < 6 && vms.length > 0; i++) {
    const vm = pick(random, vms);
    const r = random();
    vmChanges.set(
      vm.id,
      r < 0.3
        ? null
        : { id: vm.id, hostId: r < 0.6 || hosts.length === 0 ? undefined : pick(random, hosts).id, os: r < 0.8 ? vm.os : randomOs(random) },
    );
  }
  const added = { id: seededUuid(random), hostId: hosts.length > 0 ? pick(random, hosts).id : undefined, os: randomOs(random) };
  vmChanges.set(added.id, added);
  const hostChanges: InventoryChanges['hosts'] = new Map(hosts.length > 1 && random() < 0.5 ? [[pick(random, hosts).id, null]] : []);
  const next = applyChanges(poll, { vms: vmChanges, hosts: hostChanges }, poll.refreshedAt + 5_000);

  const extras: Extras = { hosts: new Map(), vms: new Map() };
  const extraVmIds = Array.from({ length: 3 }, () => seededUuid(random));
  for (let i = 0; i < 4; i++) {
    const id = seededUuid(random);
    if (random() < 0.3) {
      extras.hosts.set(id, undefined);
      continue;
    }
    const onHost = Array.from({ length: Math.floor(random() * 8) }, () => ({ id: seededUuid(random), os: randomOs(random) }));
    // Sometimes it runs a VM the snapshot does not know: a VM scored there is not counted on it.
    if (random() < 0.5) onHost.push({ id: pick(random, extraVmIds), os: randomOs(random) });
    extras.hosts.set(id, { counts: HostOsCounts.of(onHost.map((v) => v.os)), vmIds: new Set(onHost.map((v) => v.id)) });
  }
  const extraHostIds = [...extras.hosts.keys()];
  for (const id of extraVmIds)
    extras.vms.set(id, {
      hostId: random() < 0.5 ? pick(random, extraHostIds) : hosts.length > 0 ? pick(random, hosts).id : undefined,
      os: randomOs(random),
    });

  return {
    snapshots: [first, poll, next],
    extras,
    hostIds: [...hosts.map((h) => h.id), ...extraHostIds, seededUuid(random)],
    vmIds: [...vms.map((v) => v.id), added.id, ...extraVmIds, seededUuid(random)],
  };
}

/**
 * A random request: mostly valid, some upper-case, repeated or unknown ids, now and then a bad one;
 * half the time a host list sent before (`sent`), as a scheduler sends its cluster's list again and again.
 */
function randomRequest(random: Random, world: World, sent: unknown[][]): Record<string, unknown> {
  const req: Record<string, unknown> = {};
  const r = random();
  if (r < 0.5) req.vm_id = world.vmIds.length > 0 && random() < 0.9 ? pick(random, world.vmIds) : seededUuid(random);
  else if (r < 0.95) req.os = random() < 0.9 ? randomOs(random) : { type: random() < 0.5 ? '' : 'x'.repeat(300), version: '' };
  if (req.vm_id !== undefined && random() < 0.1) req.vm_id = upper(req.vm_id as string);
  if (req.vm_id !== undefined && random() < 0.02) req.vm_id = 'not-a-uuid';
  if (random() < 0.5 && sent.length > 0) {
    req.host_ids = pick(random, sent);
  } else if (random() >= 0.2 && world.hostIds.length > 0) {
    req.host_ids = Array.from({ length: 1 + Math.floor(random() * 30) }, () => {
      const id = pick(random, world.hostIds);
      const c = random();
      return c < 0.1 ? upper(id) : c < 0.12 ? 'é-not-a-uuid' : c < 0.15 ? seededUuid(random) : id;
    });
    sent.push(req.host_ids as unknown[]);
  }
  return req;
}

describe('score tables: byte-identical answers to scoring each host', () => {
  it('ScoreHosts and ScoreHostsBatch on random inventories, requests and memory limits', async () => {
    const defaults = loadConfig({}).limits;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.constantFrom(0, 3_000, 20_000, 64 * 2 ** 20),
        fc.boolean(),
        async (seed, scoreCacheBytes, async) => {
          const random = seededRandom(seed);
          const world = randomWorld(random);
          const limits: LimitSettings = {
            ...defaults,
            scoreCacheBytes,
            maxHostsPerRequest: random() < 0.1 ? 5 : defaults.maxHostsPerRequest,
            maxBatchRequests: random() < 0.1 ? 3 : defaults.maxBatchRequests,
            maxBatchHostScores: random() < 0.1 ? 40 : defaults.maxBatchHostScores,
          };
          const inv = new FixedInventory(world.snapshots[0]!, world.extras, false, true, async);
          const handlers = createScorerHandlers({ inventory: inv, limits, logger: silentLogger });
          const sent: unknown[][] = [];
          const bodies: Buffer[] = [];
          for (const snapshot of world.snapshots) {
            inv.snapshot = snapshot;
            // 4 rounds of 3 single calls, each in a state of its own, then a batch.
            for (let round = 0; round < 4; round++) {
              for (let i = 0; i < 3; i++) {
                inv.stale = random() < 0.3;
                inv.ready = random() < 0.95;
                // Now and then a request sent before, byte for byte.
                const single =
                  random() < 0.25 && bodies.length > 0
                    ? pick(random, bodies)
                    : Buffer.from(Request.encode(randomRequest(random, world, sent)).finish());
                bodies.push(single);
                const fast = await viaHandler(handlers, 'ScoreHosts', single);
                expect(fast).toEqual(await referenceScoreHosts(inv, limits, single));
              }
              const requests = Array.from({ length: Math.floor(random() * 8) }, () => randomRequest(random, world, sent));
              const batch = Buffer.from(BatchRequest.encode({ requests }).finish());
              expect(await viaHandler(handlers, 'ScoreHostsBatch', batch)).toEqual(await referenceBatch(inv, limits, batch));
            }
          }
        },
      ),
      { numRuns: 100 },
    );
    // 100 random worlds: about 8 s alone, past the default 20 s while other suites share the 2 cores.
  }, 90_000);
});

describe('score tables', () => {
  const snapshotOf = (hostCount: number, vmCount: number, seed: number) => {
    const random = seededRandom(seed);
    const hosts: EngineHost[] = Array.from({ length: hostCount }, () => ({
      id: seededUuid(random),
      name: 'h',
      clusterId: undefined,
      status: 'up',
    }));
    const builder = new SnapshotBuilder(hosts, []);
    builder.addVms(
      Array.from({ length: vmCount }, () => ({ id: seededUuid(random), hostId: pick(random, hosts).id, os: randomOs(random) })),
    );
    return builder.build({ generation: 1, refreshedAt: 1.7e12 });
  };

  it('stay within their memory limit, dropping the least recently used OS first', () => {
    const snapshot = snapshotOf(200, 2_000, 1);
    const limit = 120_000;
    const tables = new ScoreTables(limit, silentLogger);
    const t = tables.of(snapshot);
    for (const type of TYPES) for (const version of VERSIONS) t.table({ type, version }).ranked();
    const stats = tables.stats();
    expect(stats.bytes).toBeLessThanOrEqual(limit);
    expect(stats.evicted).toBeGreaterThan(0);
    expect(stats.tables).toBeGreaterThan(0);
    // The most recent OS is kept, the first one asked for is gone.
    const last = t.table({ type: TYPES.at(-1)!, version: VERSIONS.at(-1)! });
    expect(last.entries).toBe(200);
    expect(t.table({ type: TYPES[0]!, version: VERSIONS[0]! }).entries).toBe(0);
  });

  it('are kept across a poll that changed nothing, and replaced with a new generation (the id index kept while the host list is the same)', () => {
    const snapshot = snapshotOf(20, 100, 2);
    const tables = new ScoreTables(2 ** 20, silentLogger);
    const first = tables.of(snapshot);
    first.table({ type: 'rhel_8x64', version: '' }).ranked();
    expect(tables.of(Object.freeze({ ...snapshot, refreshedAt: snapshot.refreshedAt + 5_000 }))).toBe(first);
    const vm = snapshot.vms.entries().next().value![0];
    const next = applyChanges(snapshot, { vms: new Map([[vm, null]]), hosts: new Map() }, snapshot.refreshedAt + 10_000);
    const second = tables.of(next);
    expect(second).not.toBe(first);
    expect(second.index).toBe(first.index);
    expect(tables.stats()).toMatchObject({ tables: 0, bytes: 0 });
  });

  it('keep whole answers for host lists sent again within their limit, counted as they come and go', () => {
    const snapshot = snapshotOf(300, 3_000, 4);
    const limits = { ...loadConfig({}).limits };
    // Roomy: answers pile up past the most a table keeps and are let go together; tight: tables are dropped too.
    for (const limit of [8_000_000, 400_000]) {
      const random = seededRandom(5);
      const tables = new ScoreTables(limit, silentLogger);
      const t = tables.of(snapshot);
      const used = new Set<OsTable>();
      for (let i = 0; i < 400; i++) {
        const hostIds = Array.from({ length: 1 + Math.floor(random() * 60) }, () => pick(random, snapshot.hostIds));
        const query = parseIndexedRequest(
          decodeScoreHostsRequest(Buffer.from(Request.encode({ os: { type: 'x' }, host_ids: hostIds }).finish())),
          t,
          limits,
        );
        expect(query.list, 'remembered').toBeDefined();
        // Sent again: the same list, found by its bytes.
        expect(
          parseIndexedRequest(
            decodeScoreHostsRequest(Buffer.from(Request.encode({ vm_id: seededUuid(random), host_ids: hostIds }).finish())),
            t,
            limits,
          ).list,
        ).toBe(query.list);
        const table = t.table({ type: pick(random, TYPES.slice(0, 2)), version: '' });
        used.add(table);
        expect(table.listBody(query.list!)).toBe(table.listBody(query.list!));
        // What the limit counts is what the kept tables hold.
        expect(t.bytes).toBe([...used].filter((u) => u.kept).reduce((n, u) => n + u.byteSize, 0));
      }
      const stats = tables.stats();
      expect(stats.bytes).toBeLessThanOrEqual((limit * 7) / 8);
      // Binds the roomy limit; the tight one meets it by the line above.
      expect(stats.bytes).toBeLessThan(2 * (300 * 80 + 64 * 60 * 80));
      expect(stats.listBytes).toBeGreaterThan(0);
      expect(stats.listBytes).toBeLessThanOrEqual(limit / 8);
    }
  });

  it('a limit of 0 keeps nothing, and answers all the same', () => {
    const snapshot = snapshotOf(20, 100, 3);
    const tables = new ScoreTables(0, silentLogger);
    const t = tables.of(snapshot).table({ type: 'rhel_8x64', version: '8.6' });
    expect(t.ranked().order).toHaveLength(20);
    expect(tables.stats()).toMatchObject({ tables: 0, bytes: 0 });
  });
});

describe('host id index', () => {
  it('finds canonical ids by their bytes, anything by its string, and takes no other form for known', () => {
    const random = seededRandom(9);
    const ids = Array.from({ length: 300 }, () => seededUuid(random));
    const odd = [upper(seededUuid(random)), 'h-1', 'é'];
    const index = new HostIdIndex([...ids, ...odd]);
    const bytes = (s: string) => {
      const b = Buffer.from(`xx${s}yy`);
      return new DataView(b.buffer, b.byteOffset, b.byteLength);
    };
    ids.forEach((id, p) => {
      expect(index.find(bytes(id), 2, 2 + id.length)).toBe(p);
      expect(index.position(id)).toBe(p);
      expect(index.find(bytes(upper(id)), 2, 2 + id.length)).toBe(-1);
    });
    odd.forEach((id, i) => {
      expect(index.find(bytes(id), 2, 2 + Buffer.byteLength(id))).toBe(-1);
      expect(index.position(id)).toBe(ids.length + i);
    });
    expect(index.find(bytes(seededUuid(random)), 2, 38)).toBe(-1);
    expect(index.position(seededUuid(random))).toBe(-1);
    expect(index.covers([...ids, ...odd])).toBe(true);
    expect(index.covers(ids)).toBe(false);
  });
});

const INVALID_ARGUMENT = 3;

const hostId = (id: string) => field(0x1a, Buffer.from(id));
const OS_FIELD = field(0x12, field(0x0a, Buffer.from('rhel_8x64')));

/** Two valid ids; the first ends in "0000", which also parses as two unknown varint fields (field 6 = 0x30, value 0x30). */
const X = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaa0000';
const Y = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
/** host_ids [X, Y]. */
const VALID = Buffer.concat([OS_FIELD, hostId(X), hostId(Y)]);
/**
 * host_ids ["aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaa" (32 chars: not a UUID), Y], with the
 * bytes "0000" (two unknown fields) between: from the first id's first byte to the
 * last id's last byte, the very bytes of VALID, only the first id's length prefix differs.
 */
const INVALID = Buffer.concat([OS_FIELD, hostId(X.slice(0, 32)), Buffer.from(X.slice(32)), hostId(Y)]);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap and buffers held after full collections: what the process keeps. */
function heldBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** The sum of ksm_scorer_score_table_bytes over its parts, as /metrics reports it. */
async function reportedBytes(scorer: Scorer): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${scorer.service.metricsPort}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(/^ksm_scorer_score_table_bytes\{part="[a-z_]+"\} (\d+)$/gm)) sum += Number(m[1]);
  return sum;
}

describe('score tables and remembered host lists behind the gRPC fast path', () => {
  let sim: SimulatedEngine | undefined;
  let scorer: Scorer | undefined;
  afterEach(async () => {
    await scorer?.close();
    await sim?.stop();
    scorer = undefined;
    sim = undefined;
  });

  it('a host id list that is not valid is rejected even after a valid list with the same bytes from first id to last was remembered', async () => {
    sim = await startSimulator();
    scorer = await startScorer(sim);
    // Sent first, the invalid list is rejected, naming the field.
    const before = await rawCall(scorer.address, SCORE_HOSTS, grpcFrame(INVALID), { timeoutMs: 5_000 });
    expect(before.grpcStatus).toBe(INVALID_ARGUMENT);
    expect(before.grpcMessage).toContain('host_ids[0]');
    const valid = await rawCall(scorer.address, SCORE_HOSTS, grpcFrame(VALID), { timeoutMs: 5_000 });
    expect(valid.grpcStatus).toBe(0);
    // The remembered list's key and byte compare start at the first id's content, so its length prefix is never compared.
    const after = await rawCall(scorer.address, SCORE_HOSTS, grpcFrame(INVALID), { timeoutMs: 5_000 });
    expect(after.grpcStatus).toBe(INVALID_ARGUMENT);
    expect(after.grpcMessage).toContain('host_ids[0]');
  });

  it('a batch item with an invalid host id list is an error even when the item before has the same bytes from first id to last', async () => {
    sim = await startSimulator();
    // No lists remembered at all: the batch's own reuse of the previous item's lookups is enough.
    scorer = await startScorer(sim, { KSM_SCORER_SCORE_CACHE_MB: '0' });
    const alone = await rawCall(scorer.address, SCORE_HOSTS_BATCH, grpcFrame(field(0x0a, INVALID)), { timeoutMs: 5_000 });
    expect(alone.grpcStatus).toBe(0);
    expect(alone.body.includes(Buffer.from('requests[0].host_ids[0]'))).toBe(true);
    const both = await rawCall(scorer.address, SCORE_HOSTS_BATCH, grpcFrame(Buffer.concat([field(0x0a, VALID), field(0x0a, INVALID)])), {
      timeoutMs: 5_000,
    });
    expect(both.grpcStatus).toBe(0);
    expect(both.body.includes(Buffer.from('requests[1].host_ids[0]'))).toBe(true);
  });

  it('remembered host lists hold no more memory than ksm_scorer_score_table_bytes reports, within KSM_SCORER_SCORE_CACHE_MB', async () => {
    sim = await startSimulator({ hosts: 200, vms: 400, seed: 4 });
    // The default 64 MB: an eighth, 8 MB, for remembered host lists.
    scorer = await startScorer(sim, { KSM_SCORER_SCORE_CACHE_MB: '64' });
    const hosts = [...sim.inventory.hosts.keys()];
    const os = { type: 'rhel_9x64', version: '' };
    // Warm up: the table, the index, the client's and server's own buffers.
    for (let i = 0; i < 20; i++) await unary(scorer.client, 'ScoreHostsBatch', { requests: [{ os, host_ids: [hosts[0], hosts[1]] }] });
    const before = heldBytes();
    const beforeReported = await reportedBytes(scorer);
    // Many distinct short lists (two ids each), as any client may send: twice as many as the lists' share holds by its own count.
    for (let a = 0; a < 200; a++) {
      const requests = hosts.slice(0, 200).map((h) => ({ os, host_ids: [hosts[a], h] }));
      await unary(scorer.client, 'ScoreHostsBatch', { requests });
    }
    const growth = heldBytes() - before;
    const growthReported = (await reportedBytes(scorer)) - beforeReported;
    expect(growthReported).toBeGreaterThan(7 * 2 ** 20);
    // Generous: half as much again as is reported, and a megabyte of slack for the process's own noise.
    expect(growth).toBeLessThan(1.5 * growthReported + 2 ** 20);
  }, 60_000);

  it('score tables for many OS identities hold no more memory than ksm_scorer_score_table_bytes reports, within KSM_SCORER_SCORE_CACHE_MB', async () => {
    // Few hosts: each table is small, so what each costs beyond its entries shows.
    sim = await startSimulator({ hosts: 2, vms: 40, seed: 4 });
    // 16 MB: seven eighths, 14 MB, for tables.
    scorer = await startScorer(sim, { KSM_SCORER_SCORE_CACHE_MB: '16' });
    for (let i = 0; i < 20; i++) await unary(scorer.client, 'ScoreHostsBatch', { requests: [{ os: { type: 'rhel_9x64', version: '' } }] });
    const before = heldBytes();
    const beforeReported = await reportedBytes(scorer);
    // Distinct OS identities (any client may name any), more than the limit keeps by its own count.
    for (let b = 0; b < 80; b++) {
      const requests = Array.from({ length: 200 }, (_, i) => ({ os: { type: `os-${b}-${i}`, version: '' } }));
      await unary(scorer.client, 'ScoreHostsBatch', { requests });
    }
    const growth = heldBytes() - before;
    const growthReported = (await reportedBytes(scorer)) - beforeReported;
    expect(growthReported).toBeGreaterThan(12 * 2 ** 20);
    expect(growth).toBeLessThan(1.5 * growthReported + 2 ** 20);
  }, 60_000);
});
