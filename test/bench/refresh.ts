/**
 * Issue 3's numbers: for 10,000 and 100,000 VMs, a full refresh's time and
 * engine requests, the scorer's RSS, and ScoreHosts p50/p99 while a refresh
 * runs, against the same calls between refreshes (the reference).
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
const SIZES = (process.env.BENCH_REFRESH_SIZES ?? '500x10000,5000x100000').split(',').map((s) => s.split('x').map(Number) as [number, number]);

interface Row {
  hosts: number;
  vms: number;
  refreshMs: number[];
  requests: number;
  rssMb: number;
  during: number[];
  between: number[];
  /** The scorer's own event-loop delay during refreshes (medians over refreshes). */
  loopP99: number;
  loopMax: number;
}

async function measure(hosts: number, vms: number): Promise<Row> {
  const engine = await startEngineProcess(hosts, vms, PIN ? 1 : undefined);
  const { child: scorer, address } = await startScorerProcess(engine, { KSM_SCORER_EVENTS_SECONDS: '0', KSM_SCORER_REFRESH_SECONDS: '1' }, PIN ? 0 : undefined);
  const refreshes = () => scorer.logs.filter((l) => l.msg === 'inventory refreshed');
  try {
    await waitFor(() => (refreshes().length >= 1 ? true : undefined), 'first refresh', 300_000);

    const { Request, Response } = scorerTypes();
    const all = Response.decode((await rawCall(address, SCORE_HOSTS_PATH, Request.encode({ os: { type: 'rhel_8x64' } }).finish())).bytes) as unknown as {
      scores: { host_id: string }[];
    };
    const body = Request.encode({ os: { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' }, host_ids: all.scores.slice(0, 64).map((s) => s.host_id) }).finish();
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

    const windows = refreshes().slice(1).map((l) => {
      const end = Date.parse(String(l.time));
      return [end - Number(l.ms), end] as const;
    });
    const inRefresh = (t: number) => windows.some(([a, b]) => t >= a && t <= b);
    const during = samples.filter((s) => inRefresh(s.at)).map((s) => s.ms).sort((a, b) => a - b);
    const between = samples.filter((s) => !inRefresh(s.at)).map((s) => s.ms).sort((a, b) => a - b);
    const last = refreshes().at(-1)!;
    const measured = refreshes().slice(1);
    const loopP99 = percentile(measured.map((l) => Number(l.loopDelayP99Ms)).sort((a, b) => a - b), 50);
    const loopMax = percentile(measured.map((l) => Number(l.loopDelayMaxMs)).sort((a, b) => a - b), 50);
    return {
      hosts,
      vms,
      refreshMs: refreshes().slice(1).map((l) => Number(l.ms)),
      requests: Number(last.requests),
      rssMb: Number(last.rssMb),
      during,
      between,
      loopP99,
      loopMax,
    };
  } finally {
    await scorer.stop();
    await engine.child.stop();
  }
}

/** RSS of a scorer that loaded `vms` once and then sat idle, so garbage from loading is mostly collected. */
async function idleRss(hosts: number, vms: number): Promise<number> {
  const engine = await startEngineProcess(hosts, vms);
  const { child: scorer } = await startScorerProcess(engine, { KSM_SCORER_EVENTS_SECONDS: '0', KSM_SCORER_REFRESH_SECONDS: '3600', KSM_SCORER_MAX_STALENESS_SECONDS: '86400' });
  try {
    await waitFor(() => scorer.logs.find((l) => l.msg === 'inventory refreshed'), 'load', 300_000);
    await new Promise((r) => setTimeout(r, 5_000));
    return rssMb(scorer.proc.pid!);
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
  return ['Memory: scorer RSS after one load and 5 s idle, against an empty engine in the same run', table(['hosts / VMs', 'RSS MB', 'over empty MB', 'bytes per VM'], rows)].join('\n');
}

export async function refreshBench(): Promise<string> {
  const rows: Row[] = [];
  for (const [hosts, vms] of SIZES) {
    process.stderr.write(`refresh bench: ${hosts} hosts / ${vms} VMs ...\n`);
    rows.push(await measure(hosts, vms));
  }
  return [
    `Full refresh (${PIN ? 'scorer pinned to CPU 0, engine simulator and h2load on CPU 1' : 'no pinning'}; ScoreHosts with 64 hosts at ${RATE_PER_S}/s, h2load --rps)`,
    table(
      ['hosts / VMs', 'refresh ms (median, min-max)', 'engine requests', 'RSS MB', 'calls during', 'p50 / p99 ms during refresh', 'p50 / p99 ms between (ref)', 'p99 ratio', 'scorer loop delay p99 / max ms'],
      rows.map((r) => {
        const sorted = [...r.refreshMs].sort((a, b) => a - b);
        const p99d = percentile(r.during, 99);
        const p99b = percentile(r.between, 99);
        return [
          `${r.hosts} / ${r.vms}`,
          `${fmt(percentile(sorted, 50), 0)} (${sorted[0]}-${sorted.at(-1)})`,
          r.requests,
          r.rssMb,
          r.during.length,
          `${fmt(percentile(r.during, 50))} / ${fmt(p99d)}`,
          `${fmt(percentile(r.between, 50))} / ${fmt(p99b)}`,
          fmt(p99d / p99b),
          `${fmt(r.loopP99)} / ${fmt(r.loopMax)}`,
        ];
      }),
    ),
  ].join('\n');
}

if (require.main === module) {
  (async () => [await refreshBench(), await memoryBench()].join('\n\n'))().then((out) => console.log(out), (err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
