/**
 * Issue 3's and issue 18's numbers: for 10,000 and 100,000 VMs, a full
 * refresh's time and engine requests, the scorer's RSS, and ScoreHosts
 * p50/p99 while a refresh runs, against the same calls between refreshes (the
 * reference), in one process and with KSM_SCORER_WORKERS=2 (where "during"
 * lasts until the last worker has applied the generation). Each row is run
 * BENCH_REFRESH_RUNS times (default 3): the ratio is their median, with the spread.
 *
 * Three processes on loopback: the simulated engine, the scorer (refreshing
 * back to back: KSM_SCORER_REFRESH_SECONDS=1, events off), and h2load, which
 * sends ScoreHosts (64 hosts) at a fixed rate and logs each call's latency.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  benchDir,
  checkGrpc,
  fmt,
  frame,
  h2load,
  percentile,
  rawCall,
  rssMb,
  SCORE_HOSTS_PATH,
  scorerTypes,
  startEngineProcess,
  startScorerProcess,
  table,
  waitFor,
} from './lib';

const RATE_PER_S = 400;
/** BENCH_PIN=0 lets the scorer use every core (its decode worker and GC threads too). */
const PIN = process.env.BENCH_PIN !== '0';
const SIZES = (process.env.BENCH_REFRESH_SIZES ?? '500x10000,5000x100000')
  .split(',')
  .map((s) => s.split('x').map(Number) as [number, number]);
const RUNS = Number(process.env.BENCH_REFRESH_RUNS ?? 3);
/** Process layouts measured: one process, and a primary with two workers (not pinned: three processes share the two cores). */
const MODES = (process.env.BENCH_REFRESH_WORKERS ?? '1,2').split(',').map(Number);

interface Row {
  hosts: number;
  vms: number;
  workers: number;
  refreshMs: number[];
  requests: number;
  rssMb: number;
  during: number[];
  between: number[];
  /** The longest event-loop block during refreshes, median over refreshes (a worker's, in worker mode). */
  loopMax: number;
  /** Worker mode: the longest block from a generation's arrival until applied, median over refreshes (NaN: one process). */
  applyMax: number;
}

async function measure(hosts: number, vms: number, workers: number): Promise<Row> {
  const pin = PIN && workers === 1;
  const engine = await startEngineProcess(hosts, vms, pin ? 1 : undefined);
  const env = {
    KSM_SCORER_EVENTS_SECONDS: '0',
    KSM_SCORER_REFRESH_SECONDS: '1',
    KSM_SCORER_WORKERS: String(workers),
    ...(workers > 1 ? { KSM_SCORER_LOG_LEVEL: 'debug' } : {}),
  };
  const { child: scorer, address } = await startScorerProcess(engine, env, pin ? 0 : undefined);
  const refreshes = () => scorer.logs.filter((l) => l.msg === 'inventory refreshed');
  /** Each worker's rebuild of a generation (worker mode). */
  const applied = (generation: unknown) => scorer.logs.filter((l) => l.msg === 'generation applied' && l.generation === generation);
  try {
    await waitFor(() => (refreshes().length >= 1 ? true : undefined), 'first refresh', 300_000);
    // Worker mode: calls are answered once every worker has rebuilt the first generation.
    if (workers > 1)
      await waitFor(
        () => (applied(refreshes()[0]!.generation).length >= workers ? true : undefined),
        'workers applied the first generation',
        120_000,
      );

    const { Request, Response } = scorerTypes();
    const all = Response.decode(
      (await rawCall(address, SCORE_HOSTS_PATH, Request.encode({ os: { type: 'rhel_8x64' } }).finish())).bytes,
    ) as unknown as {
      scores: { host_id: string }[];
    };
    const body = Request.encode({
      os: { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' },
      host_ids: all.scores.slice(0, 64).map((s) => s.host_id),
    }).finish();
    const frameFile = join(benchDir, `refresh-frame-${vms}.bin`);
    writeFileSync(frameFile, frame(body));

    // h2load at a fixed rate for about three refresh cycles (each: the refresh, then 1 s idle).
    const cycleMs = Number(refreshes()[0]!.ms) + 1_000;
    const seconds = Math.max(4, Math.ceil((3 * cycleMs) / 1000));
    await checkGrpc(address, body, 64);
    const load = h2load(address, SCORE_HOSTS_PATH, frameFile, { clients: 1, streams: 1, seconds, rps: RATE_PER_S });
    await checkGrpc(address, body, 64);
    if (load.failed > 0) throw new Error(`${load.failed} failed requests`);
    const samples = load.requests.map((r) => ({ at: r.startMs, ms: r.ms }));

    // From the refresh's first request until the last process serving calls has the generation.
    const windows = refreshes()
      .slice(1)
      .map((l) => {
        const published = Date.parse(String(l.time));
        const end = Math.max(published, ...applied(l.generation).map((a) => Date.parse(String(a.time))));
        return [published - Number(l.ms), end] as const;
      });
    const inRefresh = (t: number) => windows.some(([a, b]) => t >= a && t <= b);
    const during = samples
      .filter((s) => inRefresh(s.at))
      .map((s) => s.ms)
      .sort((a, b) => a - b);
    const between = samples
      .filter((s) => !inRefresh(s.at))
      .map((s) => s.ms)
      .sort((a, b) => a - b);
    const last = refreshes().at(-1)!;
    const measured = refreshes().slice(1);
    // In worker mode the processes that answer calls are the workers: their longest block while applying a generation.
    const blocks = (l: Record<string, unknown>) =>
      workers > 1 ? Math.max(0, ...applied(l.generation).map((a) => Number(a.loopDelayMaxMs))) : Number(l.loopDelayMaxMs);
    const loopMax = percentile(
      measured.map(blocks).sort((a, b) => a - b),
      50,
    );
    // Worker mode: the longest block from each generation's arrival until applied (its cost alone).
    const applyMax =
      workers > 1
        ? percentile(
            measured.map((l) => Math.max(0, ...applied(l.generation).map((a) => Number(a.applyLoopDelayMaxMs)))).sort((a, b) => a - b),
            50,
          )
        : NaN;
    return {
      hosts,
      vms,
      workers,
      refreshMs: refreshes()
        .slice(1)
        .map((l) => Number(l.ms)),
      requests: Number(last.requests),
      rssMb: Number(last.rssMb),
      during,
      between,
      loopMax,
      applyMax,
    };
  } finally {
    await scorer.stop();
    await engine.child.stop();
  }
}

/** RSS of a scorer that loaded `vms` once and then sat idle, so garbage from loading is mostly collected. */
async function idleRss(hosts: number, vms: number): Promise<number> {
  const engine = await startEngineProcess(hosts, vms);
  const { child: scorer, pid } = await startScorerProcess(engine, {
    KSM_SCORER_EVENTS_SECONDS: '0',
    KSM_SCORER_REFRESH_SECONDS: '3600',
    KSM_SCORER_MAX_STALENESS_SECONDS: '86400',
  });
  try {
    await waitFor(() => scorer.logs.find((l) => l.msg === 'inventory refreshed'), 'load', 300_000);
    await new Promise((r) => setTimeout(r, 5_000));
    return rssMb(pid);
  } finally {
    await scorer.stop();
    await engine.child.stop();
  }
}

export async function memoryBench(): Promise<string> {
  const sizes: [number, number][] = [[1, 0], ...SIZES];
  const rows: (string | number)[][] = [];
  let base = NaN;
  for (const [hosts, vms] of sizes) {
    const rss = await idleRss(hosts, vms);
    if (vms === 0) base = rss;
    rows.push([`${hosts} / ${vms}`, rss, fmt(rss - base, 0), vms > 0 ? fmt(((rss - base) * 2 ** 20) / vms, 0) : '-']);
  }
  return [
    'Memory: scorer RSS after one load and 5 s idle, against an empty engine in the same run',
    table(['hosts / VMs', 'RSS MB', 'over empty MB', 'bytes per VM'], rows),
  ].join('\n');
}

export async function refreshBench(): Promise<string> {
  const rows: Row[][] = [];
  for (const [hosts, vms] of SIZES) {
    for (const workers of MODES) {
      const runs: Row[] = [];
      for (let run = 1; run <= RUNS; run++) {
        process.stderr.write(`refresh bench: ${hosts} hosts / ${vms} VMs, KSM_SCORER_WORKERS=${workers}, run ${run} of ${RUNS} ...\n`);
        const r = await measure(hosts, vms, workers);
        runs.push(r);
        process.stderr.write(
          `  p99 during ${fmt(percentile(r.during, 99))} ms, between ${fmt(percentile(r.between, 99))} ms, ratio ${fmt(percentile(r.during, 99) / percentile(r.between, 99))}, loop delay max ${fmt(r.loopMax)} ms\n`,
        );
      }
      rows.push(runs);
    }
  }
  const median = (xs: number[]) =>
    percentile(
      [...xs].sort((a, b) => a - b),
      50,
    );
  const spread = (xs: number[]) => `${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))}`;
  return [
    `Full refresh (one process: ${PIN ? 'scorer pinned to CPU 0, engine simulator and h2load on CPU 1' : 'no pinning'}; workers: no pinning; ScoreHosts with 64 hosts at ${RATE_PER_S}/s, h2load --rps; ${RUNS} runs a row, medians with min-max)`,
    table(
      [
        'hosts / VMs',
        'workers',
        'refresh ms',
        'engine requests',
        'RSS MB',
        'calls during',
        'p99 ms during refresh',
        'p99 ms between (ref)',
        'p99 ratio (median, min-max)',
        'loop delay max ms (median, min-max)',
        'worker: applying, max ms',
      ],
      rows.map((runs) => {
        const r0 = runs[0]!;
        const p99d = runs.map((r) => percentile(r.during, 99));
        const p99b = runs.map((r) => percentile(r.between, 99));
        const ratios = runs.map((_, i) => p99d[i]! / p99b[i]!);
        const loop = runs.map((r) => r.loopMax);
        return [
          `${r0.hosts} / ${r0.vms}`,
          r0.workers === 1 ? 'none' : String(r0.workers),
          fmt(median(runs.flatMap((r) => r.refreshMs)), 0),
          r0.requests,
          fmt(median(runs.map((r) => r.rssMb)), 0),
          runs.reduce((n, r) => n + r.during.length, 0),
          fmt(median(p99d)),
          fmt(median(p99b)),
          `${fmt(median(ratios))} (${spread(ratios)})`,
          `${fmt(median(loop))} (${spread(loop)})`,
          r0.workers === 1 ? '-' : `${fmt(median(runs.map((r) => r.applyMax)))} (${spread(runs.map((r) => r.applyMax))})`,
        ];
      }),
    ),
  ].join('\n');
}

if (require.main === module) {
  (async () => [await refreshBench(), await memoryBench()].join('\n\n'))().then(
    (out) => console.log(out),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
