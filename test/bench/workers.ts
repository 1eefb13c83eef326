/**
 * Issue 13's worker scaling, in one run: ScoreHosts QPS with KSM_SCORER_WORKERS=2 against 1
 * (nothing pinned, h2load with several connections so both workers get load, runs alternating),
 * the engine requests each made over the same period (each scorer has its own engine process),
 * and the RSS of the primary and of each worker at 100,000 VMs against the single process.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  benchDir,
  type Child,
  checkGrpc,
  type EngineProcess,
  engineRequests,
  fmt,
  frame,
  h2load,
  median,
  rawCall,
  rssMb,
  SCORE_HOSTS_PATH,
  scorerTypes,
  startEngineProcess,
  startScorerProcess,
  table,
  waitFor,
} from './lib';

const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const [HOSTS, VMS] = [1_000, 20_000];
const [BIG_HOSTS, BIG_VMS] = (process.env.BENCH_WORKERS_RSS_SIZE ?? '5000x100000').split('x').map(Number) as [number, number];
/** Full refreshes every 30 s (events every 5 s, the default), so the measured period holds several. */
const REFRESH_S = 30;
const CONNECTIONS = 8;
const STREAMS = 16;

const spread = (xs: number[], digits = 0) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${fmt(median(s), digits)} (${fmt(s[0]!, digits)}-${fmt(s.at(-1)!, digits)})`;
};

const TICK = 100; // USER_HZ on Linux

/** CPU seconds the whole machine has spent. */
function machineCpu(): number {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / TICK;
}

/** CPU seconds of `pids`, each with its waited-for children (h2load, for this process). */
function processCpu(pids: number[]): number {
  let seconds = 0;
  for (const pid of pids) {
    try {
      // After the command name: utime, stime, cutime, cstime are the 12th to 15th fields.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat
        .slice(stat.lastIndexOf(')') + 2)
        .split(' ')
        .map(Number);
      seconds += (fields[11]! + fields[12]! + fields[13]! + fields[14]!) / TICK;
    } catch {
      // gone meanwhile
    }
  }
  return seconds;
}

/** `ksm-scorer serve` with `workers`, once every worker serves the first generation. */
async function startScorer(
  engine: EngineProcess,
  workers: number,
  env: Record<string, string> = {},
): Promise<{ child: Child; address: string }> {
  const scorer = await startScorerProcess(engine, {
    KSM_SCORER_REFRESH_SECONDS: String(REFRESH_S),
    ...env,
    KSM_SCORER_WORKERS: String(workers),
  });
  const fresh = () =>
    scorer.child.logs.filter(
      (l) => l.msg === 'inventory state changed' && l.state === 'fresh' && (workers === 1 || l.worker !== undefined),
    );
  await waitFor(() => (new Set(fresh().map((l) => l.worker)).size >= workers ? true : undefined), `${workers} worker(s) serving`, 600_000);
  return scorer;
}

/** Processes of a scorer: the primary (or single process), then each worker, from the primary's log. */
function pids(scorer: Child): { name: string; pid: number }[] {
  const workers = scorer.logs
    .filter((l) => l.msg === 'worker started')
    .map((l) => ({ name: `worker ${String(l.worker)}`, pid: Number(l.workerPid) }));
  // The serving process (not the one started, which relays: src/node-flags.ts) logs the start line.
  const primary = Number(scorer.logs.find((l) => l.msg === 'starting ksm-scorer')?.pid);
  return [{ name: workers.length === 0 ? 'single process' : 'primary', pid: primary }, ...workers];
}

async function scaling(): Promise<{ text: string; ratio: number; requests: [number, number] }> {
  const engines = [await startEngineProcess(HOSTS, VMS), await startEngineProcess(HOSTS, VMS)];
  const scorers: { child: Child; address: string }[] = [];
  try {
    // Started together, so their syncs keep nearly the same schedule; each engine counts its scorer's requests from the start.
    scorers.push(...(await Promise.all([startScorer(engines[0]!, 1), startScorer(engines[1]!, 2)])));
    const { Request, Response } = scorerTypes();
    const all = Response.decode(
      (await rawCall(scorers[0]!.address, SCORE_HOSTS_PATH, Request.encode({ os: { type: 'rhel_8x64' } }).finish())).bytes,
    ) as unknown as {
      scores: { host_id: string }[];
    };
    const body = Request.encode({
      os: { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' },
      host_ids: all.scores.slice(0, 64).map((s) => s.host_id),
    }).finish();
    const frameFile = join(benchDir, 'workers-frame-64.bin');
    writeFileSync(frameFile, frame(body));

    const qps: [number[], number[]] = [[], []];
    /** CPU cores the rest of the machine (other users, not this benchmark) took during each run. */
    const others: [number[], number[]] = [[], []];
    /** Calls per CPU second of the scorer's processes: what it would do with the cores it did not get. */
    const perCpu: [number[], number[]] = [[], []];
    const scorerPids = scorers.map((s) => pids(s.child).map((p) => p.pid));
    const ourPids = [process.pid, ...engines.map((e) => e.child.proc.pid!), ...scorers.map((s) => s.child.proc.pid!), ...scorerPids.flat()];
    for (let i = 0; i < REPEATS; i++) {
      for (const [k, { address }] of scorers.entries()) {
        await checkGrpc(address, body, 64);
        const before = { machine: machineCpu(), ours: processCpu(ourPids), scorer: processCpu(scorerPids[k]!), at: performance.now() };
        const r = h2load(address, SCORE_HOSTS_PATH, frameFile, { clients: CONNECTIONS, streams: STREAMS, seconds: SECONDS, pin: false });
        const seconds = (performance.now() - before.at) / 1000;
        others[k]!.push(Math.max(0, machineCpu() - before.machine - (processCpu(ourPids) - before.ours)) / seconds);
        // The rate h2load measured, over the cores the scorer used in the run (warm-up included: the same load).
        perCpu[k]!.push(r.qps / ((processCpu(scorerPids[k]!) - before.scorer) / seconds));
        if (r.failed > 0) throw new Error(`${r.failed} failed requests against ${address}`);
        await checkGrpc(address, body, 64);
        qps[k]!.push(r.qps);
      }
    }
    // Counted half-way between two refresh times (a refresh is due every 30 s, on the next 5 s poll), so
    // neither count cuts a refresh in the middle; at least three refreshes in.
    const first = Date.parse(String(scorers[0]!.child.logs.find((l) => l.msg === 'inventory refreshed')!.time));
    const cycles = Math.max(3, Math.ceil((Date.now() - first) / (REFRESH_S * 1000)));
    await new Promise((r) => setTimeout(r, first + cycles * REFRESH_S * 1000 + 18_000 - Date.now()));
    const requests = (await Promise.all(engines.map((e) => engineRequests(e.child)))) as [number, number];
    const windowMs = Date.now() - first;
    const refreshes = scorers.map((s) => s.child.logs.filter((l) => l.msg === 'inventory refreshed').length);
    // Runs next to each other share the machine's other load best: the ratio is taken per pair.
    const ratios = qps[0].map((q, i) => qps[1][i]! / q);
    const ratio = median(ratios);
    const text = [
      `Worker scaling: ScoreHosts, 64 hosts (${HOSTS} hosts / ${VMS} VMs), h2load ${CONNECTIONS} connections x ${STREAMS} streams, ${SECONDS} s after 1 s warm-up, nothing pinned, ${REPEATS} runs alternating: median (min-max)`,
      table(
        [
          'KSM_SCORER_WORKERS',
          'QPS',
          'ratio to 1 worker (per pair of runs)',
          'calls per scorer CPU second',
          'other load, cores',
          `engine requests from start, both over the same ${Math.round(windowMs / 1000)} s (full refreshes)`,
        ],
        [
          [1, spread(qps[0]), '1.00', spread(perCpu[0]), spread(others[0], 2), `${requests[0]} (${refreshes[0]})`],
          [2, spread(qps[1]), spread(ratios, 2), spread(perCpu[1]), spread(others[1], 2), `${requests[1]} (${refreshes[1]})`],
        ],
      ),
    ].join('\n');
    return { text, ratio, requests };
  } finally {
    for (const s of scorers) await s.child.stop();
    for (const e of engines) await e.child.stop();
  }
}

/** RSS of each process after one load of the big inventory and 5 s idle. */
async function memory(): Promise<{ text: string; single: number; workers: number[] }> {
  const engine = await startEngineProcess(BIG_HOSTS, BIG_VMS);
  const rows: (string | number)[][] = [];
  const measured: Record<number, { name: string; rss: number }[]> = {};
  try {
    for (const workers of [1, 2]) {
      const { child } = await startScorer(engine, workers, {
        KSM_SCORER_REFRESH_SECONDS: '3600',
        KSM_SCORER_MAX_STALENESS_SECONDS: '86400',
      });
      try {
        await new Promise((r) => setTimeout(r, 5_000));
        measured[workers] = pids(child).map(({ name, pid }) => ({ name, rss: rssMb(pid) }));
      } finally {
        await child.stop();
      }
      for (const { name, rss } of measured[workers]) rows.push([`${workers}`, name, rss]);
    }
  } finally {
    await engine.child.stop();
  }
  return {
    text: [
      `Memory at ${BIG_VMS} VMs (${BIG_HOSTS} hosts): RSS after one load and 5 s idle, the engine in a process of its own`,
      table(['KSM_SCORER_WORKERS', 'process', 'RSS MB'], rows),
    ].join('\n'),
    single: measured[1]![0]!.rss,
    workers: measured[2]!.slice(1).map((p) => p.rss),
  };
}

export async function workersBench(): Promise<string> {
  const s = await scaling();
  const m = await memory();
  const targets = [
    `2 workers >= 1.4x the QPS of 1: ${fmt(s.ratio)}x ${s.ratio >= 1.4 ? 'met' : 'NOT met'}`,
    // A saturated single process runs its polls a little late, so over minutes it may make one or two fewer.
    `engine requests equal: ${s.requests[0]} vs ${s.requests[1]} ${Math.abs(s.requests[0] - s.requests[1]) <= 4 ? 'met' : 'NOT met'} (within two events polls of 2 requests)`,
    `each worker's RSS <= the single process's: ${m.workers.join(', ')} vs ${m.single} MB ${m.workers.every((w) => w <= m.single) ? 'met' : 'NOT met'}`,
  ];
  return [s.text, '', m.text, '', `Targets: ${targets.join('; ')}`].join('\n');
}

if (require.main === module) {
  workersBench().then(
    (s) => console.log(s),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
