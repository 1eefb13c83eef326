/**
 * Issue 13's per-core numbers, each against limit servers in the same run: bare
 * grpc-js answering the same bytes (the limit), and the same with the
 * service's own grpc-js options (limit + transport: what the transport limits cost):
 * - ScoreHosts QPS at 8, 64 and 512 named hosts (one prebuilt frame), and with
 *   empty host_ids over an inventory of 500 hosts;
 * - a realistic mix: MIX_REQUESTS different prebuilt requests (random VMs and OS
 *   identities of the simulator, random host subsets, 20% empty host lists), one
 *   h2load process each, all at once; a limit answers request i on a path of its
 *   own with the scorer's answer to it, so answers are the same sizes;
 * - ScoreHostsBatch (100 VMs x 64 hosts) host-scores/s, also per CPU second (one core);
 * - p50/p99 at 1,000 calls/s (64 hosts);
 * - score table memory: every OS identity of the inventory, every host, ranked.
 * The servers take turns within each round, in an order that turns round by
 * round. Servers run on CPU 0, engines and h2load on CPU 1 (where taskset works).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import protobuf from 'protobufjs';
import { loadConfig } from '../../src/config/load';
import { HostInventory } from '../../src/inventory/inventory';
import { operatingSystems } from '../../src/inventory/listings';
import { silentLogger } from '../../src/log';
import { EngineClient } from '../../src/ovirt/client';
import { PROTO_ROOT, SCORER_PROTO } from '../../src/contract/proto';
import { ScoreTables } from '../../src/fast-path/score-tables';
import { seededRandom } from '../../src/simulator/random';
import {
  benchDir,
  type Child,
  checkGrpc,
  type EngineProcess,
  engineVms,
  fmt,
  frame,
  h2load,
  h2loadTogether,
  median,
  percentile,
  rawCall,
  SCORE_HOSTS_PATH,
  scorerTypes,
  spawnNode,
  spread,
  startEngineProcess,
  startScorerProcess,
  table,
  waitFor,
} from './lib';

const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
/** Different requests in the mix: one h2load process (1 connection, MIX_STREAMS streams) each. */
const MIX_REQUESTS = 20;
const MIX_STREAMS = 6;
const PATH = SCORE_HOSTS_PATH;
const BATCH_PATH = '/ksmscorer.v1.HostScorerService/ScoreHostsBatch';
const LIST_OS_PATH = '/ksmscorer.v1.HostScorerService/ListOperatingSystems';
const OS = { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' };
const { Request, Response, BatchRequest } = scorerTypes();
const ListOsResponse = new protobuf.Root()
  .loadSync(join(PROTO_ROOT, SCORER_PROTO), { keepCase: true })
  .lookupType('ksmscorer.v1.ListOperatingSystemsResponse');

/** One load run against one server: its throughput, and the server's CPU time per call. */
interface Run {
  readonly qps: number;
  readonly cpuUs: number;
}

/** The three servers' runs, repeat by repeat. */
interface Compared {
  readonly scorer: Run[];
  /** Bare grpc-js answering the same bytes. */
  readonly limit: Run[];
  /** The same with the service's transport options (transport-limit timers and interceptor). */
  readonly transport: Run[];
}

type Target = { readonly address: string; readonly pid: number };

/** REPEATS rounds, each server once a round, the order turning round by round (drift on a shared machine hits all alike). */
async function compare(scorer: () => Promise<Run>, limit: () => Promise<Run>, transport: () => Promise<Run>): Promise<Compared> {
  const out: Compared = { scorer: [], limit: [], transport: [] };
  const runs = [
    async () => out.scorer.push(await scorer()),
    async () => out.limit.push(await limit()),
    async () => out.transport.push(await transport()),
  ];
  for (let i = 0; i < REPEATS; i++) for (let k = 0; k < runs.length; k++) await runs[(i + k) % runs.length]!();
  return out;
}

/** Scorer QPS / reference QPS, round by round. */
const ratios = (scorer: Run[], reference: Run[]) => scorer.map((s, i) => s.qps / reference[i]!.qps);
const qps = (runs: Run[]) =>
  spread(
    runs.map((r) => r.qps),
    0,
  );
const cpu = (runs: Run[]) => fmt(median(runs.map((r) => r.cpuUs)), 0);

const row = (name: string, bytes: string | number, c: Compared) => [
  name,
  bytes,
  qps(c.scorer),
  qps(c.limit),
  spread(ratios(c.scorer, c.limit), 2),
  qps(c.transport),
  spread(ratios(c.scorer, c.transport), 2),
  `${cpu(c.scorer)} / ${cpu(c.limit)} / ${cpu(c.transport)}`,
];
const HEADER = [
  'hosts',
  'response bytes',
  'ScoreHosts QPS',
  'limit QPS',
  'ratio',
  'limit + transport QPS',
  'ratio',
  'CPU µs per call (ScoreHosts / limit / + transport)',
];

/** h2load runs at once against `target`; failed calls fail the benchmark. */
async function load(target: Target, runs: readonly { path: string; frameFile: string }[], streams: number, clients: number): Promise<Run> {
  const { results, cpuSeconds } = await h2loadTogether(
    runs.map((r) => ({ ...r, address: target.address })),
    { clients, streams, seconds: SECONDS },
    target.pid,
  );
  const failed = results.reduce((n, r) => n + r.failed, 0);
  if (failed > 0) throw new Error(`${failed} failed requests against ${target.address}`);
  const calls = results.reduce((n, r) => n + r.succeeded, 0);
  return { qps: results.reduce((n, r) => n + r.qps, 0), cpuUs: (cpuSeconds * 1e6) / calls };
}

/** The limit server answering `responses` (see reference-server.ts); `transport`: with the service's transport options. */
async function startReference(responses: readonly Buffer[], transport: boolean): Promise<Target & { child: Child }> {
  const files = responses.map((response, i) => {
    const file = join(benchDir, `response-${Date.now()}-${i}.bin`);
    writeFileSync(file, response);
    return file;
  });
  const child = spawnNode([join(__dirname, 'reference-server.js'), ...(transport ? ['--transport'] : []), ...files], {}, 0);
  const { port } = await waitFor(
    () => (child.stdout.includes('\n') ? (JSON.parse(child.stdout.split('\n')[0]!) as { port: number }) : undefined),
    'reference server',
  );
  return { child, address: `127.0.0.1:${port}`, pid: child.proc.pid! };
}

/** Both limit servers for `responses`, stopped after `use`. */
async function withReferences<T>(responses: readonly Buffer[], use: (limit: Target, transport: Target) => Promise<T>): Promise<T> {
  const limit = await startReference(responses, false);
  const transport = await startReference(responses, true);
  try {
    return await use(limit, transport);
  } finally {
    await limit.child.stop();
    await transport.child.stop();
  }
}

/** One prebuilt frame, against both limits. */
async function singleFrame(scorer: Target, body: Uint8Array, hosts: number): Promise<{ bytes: number; result: Compared }> {
  const frameFile = join(benchDir, `frame-${Date.now()}.bin`);
  writeFileSync(frameFile, frame(body));
  const response = (await rawCall(scorer.address, PATH, body)).bytes;
  const run = (target: Target) => async () => {
    await checkGrpc(target.address, body, hosts);
    const r = await load(target, [{ path: PATH, frameFile }], 32, 4);
    await checkGrpc(target.address, body, hosts);
    return r;
  };
  const result = await withReferences([response], (limit, transport) => compare(run(scorer), run(limit), run(transport)));
  return { bytes: response.length, result };
}

/** The realistic mix: different requests at once, one h2load process each. */
async function mix(
  scorer: Target,
  engine: EngineProcess,
  hostIds: readonly string[],
): Promise<{ bytes: number; result: Compared; described: string }> {
  const random = seededRandom(13);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const vms = await engineVms(engine, 1_000);
  const { address } = scorer;
  const listed = ListOsResponse.decode((await rawCall(address, LIST_OS_PATH, new Uint8Array(0))).bytes) as unknown as {
    operating_systems: { os: { type: string; version: string } }[];
  };
  const oses = listed.operating_systems.map((u) => u.os);
  const requests = Array.from({ length: MIX_REQUESTS }, (_, i) => {
    const req: { vm_id?: string; os?: { type: string; version: string }; host_ids?: string[] } =
      random() < 0.5 ? { vm_id: pick(vms).id } : { os: pick(oses) };
    // One in five names no hosts; the others a cluster's worth, 8 to 512 hosts (log-uniform), in random order.
    if (i % 5 !== 0) req.host_ids = [...hostIds].sort(() => random() - 0.5).slice(0, Math.round(2 ** (3 + 6 * random())));
    return req;
  });
  const bodies = requests.map((r) => Request.encode(r).finish());
  const counts = requests.map((r) => r.host_ids?.length ?? hostIds.length);
  const frames = bodies.map((body, i) => {
    const file = join(benchDir, `mix-${i}.bin`);
    writeFileSync(file, frame(body));
    return file;
  });
  const responses = await Promise.all(bodies.map(async (body) => (await rawCall(address, PATH, body)).bytes));
  const check = async (target: string, path: (i: number) => string) => {
    for (const i of [0, 1, 2]) {
      const res = Response.decode((await rawCall(target, path(i), bodies[i]!)).bytes) as unknown as { scores: unknown[] };
      if (res.scores.length !== counts[i])
        throw new Error(`expected ${counts[i]} scores from ${target}${path(i)}, got ${res.scores.length}`);
    }
  };
  const run = (target: Target, path: (i: number) => string) => async () => {
    await check(target.address, path);
    const r = await load(
      target,
      frames.map((frameFile, i) => ({ path: path(i), frameFile })),
      MIX_STREAMS,
      1,
    );
    await check(target.address, path);
    return r;
  };
  const own = (i: number) => `${PATH}${i}`;
  const result = await withReferences(responses, (limit, transport) =>
    compare(
      run(scorer, () => PATH),
      run(limit, own),
      run(transport, own),
    ),
  );
  const byVm = requests.filter((r) => r.vm_id !== undefined).length;
  const named = counts.filter((_, i) => requests[i]!.host_ids !== undefined);
  const described = `${MIX_REQUESTS} requests: ${byVm} by vm_id, ${MIX_REQUESTS - byVm} by os; ${MIX_REQUESTS - named.length} with empty host_ids (${hostIds.length} hosts), the others ${Math.min(...named)} to ${Math.max(...named)} hosts`;
  return { bytes: Math.round(responses.reduce((n, r) => n + r.length, 0) / responses.length), result, described };
}

/** Every OS identity of the engine's inventory scored for every host, ranked: what the tables hold at most for this inventory. */
async function tableMemory(engine: EngineProcess): Promise<(string | number)[]> {
  const config = loadConfig({ OVIRT_URL: engine.url, OVIRT_USERNAME: engine.username, OVIRT_PASSWORD: engine.password });
  const client = new EngineClient({ ...config.engine, connection: config.engine.connection!, logger: silentLogger });
  const inventory = new HostInventory({ source: client, settings: config.inventory, logger: silentLogger });
  const snapshot = await inventory.refresh();
  await inventory.stop();
  await client.close();
  const oses = operatingSystems(snapshot);
  const tables = new ScoreTables(config.limits.scoreCacheBytes, silentLogger);
  const ofSnapshot = tables.of(snapshot);
  // Measured too: the heap and buffers held after a full collection, before and after.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage();
  for (const { os } of oses) ofSnapshot.table(os).ranked();
  gc();
  const after = process.memoryUsage();
  const s = tables.stats();
  const mb = (b: number) => fmt(b / 2 ** 20, 1);
  const measured = after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers;
  return [
    `${snapshot.hostCount} / ${snapshot.vmCount}`,
    oses.length,
    s.tables,
    mb(s.bytes),
    mb(measured),
    fmt(s.bytes / Math.max(1, s.tables * snapshot.hostCount), 0),
    fmt(s.indexBytes / 1024, 0),
    `${mb(s.limitBytes)} (host lists: ${mb(s.limitBytes / 8)})`,
  ];
}

export async function perCoreBench(): Promise<string> {
  const out: string[] = [];
  const engine = await startEngineProcess(1_000, 20_000, 1);
  const { child: scorer, address, pid } = await startScorerProcess(engine, {}, 0);
  const target: Target = { address, pid };
  const noted: Record<string, { limit: number; transport: number }> = {};
  const note = (name: string, c: Compared) =>
    (noted[name] = { limit: median(ratios(c.scorer, c.limit)), transport: median(ratios(c.scorer, c.transport)) });
  try {
    await waitFor(() => scorer.logs.find((l) => l.msg === 'inventory refreshed'), 'inventory');
    const all = Response.decode((await rawCall(address, PATH, Request.encode({ os: OS }).finish())).bytes) as unknown as {
      scores: { host_id: string }[];
    };
    // In random order: not the engine's, which would let the first call lay the entries out in the order asked for.
    const shuffle = seededRandom(7);
    const hostIds = all.scores.map((s) => s.host_id).sort(() => shuffle() - 0.5);

    // 1. One frame: 8, 64, 512 named hosts; empty host_ids over 500 hosts (an inventory of its own); the mix.
    const rows: (string | number)[][] = [];
    for (const n of [8, 64, 512]) {
      const { bytes, result } = await singleFrame(target, Request.encode({ os: OS, host_ids: hostIds.slice(0, n) }).finish(), n);
      note(`${n} hosts`, result);
      rows.push(row(`${n} named`, bytes, result));
    }
    {
      const small = await startEngineProcess(500, 10_000, 1);
      const other = await startScorerProcess(small, {}, 0);
      try {
        await waitFor(() => other.child.logs.find((l) => l.msg === 'inventory refreshed'), 'inventory');
        const { bytes, result } = await singleFrame({ address: other.address, pid: other.pid }, Request.encode({ os: OS }).finish(), 500);
        note('empty host_ids over 500 hosts', result);
        rows.push(row('empty host_ids, 500 hosts', bytes, result));
      } finally {
        await other.child.stop();
        await small.child.stop();
      }
    }
    const mixed = await mix(target, engine, hostIds);
    note('mix', mixed.result);
    rows.push(row('realistic mix', `${mixed.bytes} (mean)`, mixed.result));
    out.push(
      `ScoreHosts per core against the limit, ${REPEATS} rounds of ${SECONDS} s runs after 1 s warm-up: median (min-max); ratios are ScoreHosts QPS / limit QPS round by round.`,
      "Limit: bare grpc-js answering the same bytes. Limit + transport: the same with the service's grpc-js options (the transport limits' timers and interceptor).",
      `One frame: h2load 4 connections x 32 streams. Mix: ${mixed.described}; ${MIX_REQUESTS} h2load processes at once, 1 connection x ${MIX_STREAMS} streams each.`,
      table(HEADER, rows),
      '',
    );

    // 2. Batch: 100 VMs x 64 hosts per call.
    const vmIds = (await engineVms(engine, 100)).map((v) => v.id);
    const batchBody = BatchRequest.encode({ requests: vmIds.map((vm_id) => ({ vm_id, host_ids: hostIds.slice(0, 64) })) }).finish();
    const batchFrame = join(benchDir, 'frame-batch.bin');
    writeFileSync(batchFrame, frame(batchBody));
    const batchResponse = (await rawCall(address, BATCH_PATH, batchBody)).bytes;
    const batch = await withReferences([batchResponse], (limit, transport) =>
      compare(
        () => load(target, [{ path: BATCH_PATH, frameFile: batchFrame }], 8, 2),
        () => load(limit, [{ path: PATH, frameFile: batchFrame }], 8, 2),
        () => load(transport, [{ path: PATH, frameFile: batchFrame }], 8, 2),
      ),
    );
    const hostScores = (runs: Run[]) =>
      spread(
        runs.map((r) => r.qps * 6_400),
        0,
      );
    const onOneCore = (runs: Run[]) => runs.map((r) => (6_400 * 1e6) / r.cpuUs);
    const batchRate = median(onOneCore(batch.scorer));
    out.push(
      `ScoreHostsBatch (100 VMs x 64 hosts per call, ${batchResponse.length} bytes; h2load 2 x 8), ${REPEATS} rounds: median (min-max); on one core: 6,400 / CPU time per call`,
      table(
        ['server', 'host-scores/s', 'host-scores/s on one core', 'ScoreHostsBatch QPS / this'],
        [
          ['ScoreHostsBatch', hostScores(batch.scorer), spread(onOneCore(batch.scorer), 0), '-'],
          [
            'limit (the same answer bytes)',
            hostScores(batch.limit),
            spread(onOneCore(batch.limit), 0),
            spread(ratios(batch.scorer, batch.limit), 2),
          ],
          [
            'limit + transport',
            hostScores(batch.transport),
            spread(onOneCore(batch.transport), 0),
            spread(ratios(batch.scorer, batch.transport), 2),
          ],
        ],
      ),
      '',
    );

    // 3. Latency, 64 hosts, from h2load's per-request log: a fixed 1,000 calls/s on one connection (several clients would fire on the same tick), and saturation.
    const body64 = Request.encode({ os: OS, host_ids: hostIds.slice(0, 64) }).finish();
    const frame64 = join(benchDir, 'frame-latency-64.bin');
    writeFileSync(frame64, frame(body64));
    let p99 = NaN;
    const latRows = await withReferences([(await rawCall(address, PATH, body64)).bytes], async (limit, transport) => {
      const latRows: (string | number)[][] = [];
      for (const [name, at] of [
        ['ScoreHosts', address],
        ['limit', limit.address],
        ['limit + transport', transport.address],
      ] as const) {
        await checkGrpc(at, body64, 64);
        const moderate: number[][] = [];
        for (let i = 0; i < REPEATS; i++)
          moderate.push(h2load(at, PATH, frame64, { clients: 1, streams: 1, seconds: SECONDS, rps: 1_000 }).latenciesMs);
        const sat = h2load(at, PATH, frame64, { clients: 4, streams: 32, seconds: SECONDS }).latenciesMs;
        const p99s = moderate.map((l) => percentile(l, 99));
        if (name === 'ScoreHosts') p99 = median(p99s);
        latRows.push([
          name,
          `${spread(
            moderate.map((l) => percentile(l, 50)),
            3,
          )} / ${spread(p99s, 3)}`,
          `${fmt(percentile(sat, 50), 3)} / ${fmt(percentile(sat, 99), 3)}`,
        ]);
      }
      return latRows;
    });
    out.push(
      'Latency, 64 hosts, ms',
      table(
        ['server', `p50 / p99 at 1,000 calls/s (h2load --rps, ${REPEATS} runs: median (min-max))`, 'p50 / p99 at saturation (h2load 4x32)'],
        latRows,
      ),
      '',
    );

    // 4. Table memory.
    out.push(
      'Score tables at most, for this inventory: every OS identity, every host, ranked (KSM_SCORER_SCORE_CACHE_MB bounds them)',
      table(
        [
          'hosts / VMs',
          'OS identities',
          'tables kept',
          'MiB counted',
          'MiB measured (heap + buffers)',
          'bytes per host per OS',
          'id index KiB',
          'limit MiB',
        ],
        [await tableMemory(engine)],
      ),
      '',
    );

    const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
    const verdict = (name: string, min: number) => {
      const r = noted[name]!;
      return `${name} >= ${min}: ${fmt(r.limit, 3)} ${met(r.limit >= min)} (${fmt(r.transport, 3)} of limit + transport)`;
    };
    out.push(
      'Targets (median ratios to the bare limit): ' +
        [
          verdict('64 hosts', 0.8),
          verdict('512 hosts', 0.6),
          verdict('empty host_ids over 500 hosts', 0.8),
          `batch >= 3M host-scores/s on one core: ${fmt(batchRate / 1e6, 2)}M ${met(batchRate >= 3e6)}`,
          `p99 at 1,000/s < 1 ms: ${fmt(p99, 3)} ms ${met(p99 < 1)}`,
          `(mix: ${fmt(noted.mix!.limit)}, ${fmt(noted.mix!.transport)} of limit + transport)`,
        ].join('; '),
    );
    return out.join('\n');
  } finally {
    await scorer.stop();
    await engine.child.stop();
  }
}

if (require.main === module) {
  perCoreBench().then(
    (s) => console.log(s),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
