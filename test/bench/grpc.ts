/**
 * Issue 4's engine load: the seed's N+1 approach against the same engine,
 * requests and wall time per call, and the engine requests ksm-scorer makes
 * while it answers 100 calls/s. (Throughput and latency: per-core.ts.)
 * Servers run pinned to CPU 0, load generators to CPU 1 (where taskset works).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  benchDir,
  engineRequests,
  engineVms,
  fmt,
  frame,
  h2load,
  median,
  percentile,
  rawCall,
  SCORE_HOSTS_PATH,
  scorerTypes,
  startEngineProcess,
  startScorerProcess,
  table,
  waitFor,
} from './lib';
import { seedScore } from './seed';

const HOSTS = 1_000;
const VMS = 20_000;
const dir = benchDir;
const { Request: RequestType, Response: ResponseType } = scorerTypes();
const PATH = SCORE_HOSTS_PATH;

export async function grpcBench(): Promise<string> {
  if (spawnSync('h2load', ['--version']).status !== 0) throw new Error('h2load is missing: test/bench/run.sh installs nghttp2-client');
  const engine = await startEngineProcess(HOSTS, VMS, 1);
  const sim = engine.child;
  const { child: scorer, address } = await startScorerProcess(engine, {}, 0);
  const out: string[] = [];
  try {
    await waitFor(() => scorer.logs.find((l) => l.msg === 'inventory refreshed'), 'inventory');
    const all = ResponseType.decode(
      (await rawCall(address, PATH, RequestType.encode({ os: { type: 'rhel_8x64' } }).finish())).bytes,
    ) as unknown as { scores: { host_id: string }[] };
    const hostIds = all.scores.map((s) => s.host_id);
    const listed = await engineVms(engine, 200);
    const runningVm = listed.find((v) => v.host !== undefined)?.id ?? '';

    // The seed's approach against the same engine.
    const seedMs: number[] = [];
    let seedRequests = 0;
    for (let i = 0; i < 10; i++) {
      const t0 = process.hrtime.bigint();
      const r = await seedScore(engine, hostIds.slice(0, 64), runningVm);
      seedMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      seedRequests = r.requests;
    }
    // ksm-scorer at 100 calls/s of the same question (by VM id), engine requests counted at the engine meanwhile.
    const vmFrame = join(dir, 'frame-vm.bin');
    writeFileSync(vmFrame, frame(RequestType.encode({ vm_id: runningVm, host_ids: hostIds.slice(0, 64) }).finish()));
    const windowS = 12;
    const before = await engineRequests(sim);
    const ours = h2load(address, PATH, vmFrame, { clients: 1, streams: 1, seconds: windowS, rps: 100 });
    const during = (await engineRequests(sim)) - before;
    const ourMs = percentile(ours.latenciesMs, 50);
    const fullRefresh = scorer.logs.filter((l) => l.msg === 'inventory refreshed').at(-1)!;
    // Events polls were counted in the window; full resyncs (every 300 s by default) are amortised.
    const ourPerSecond = during / windowS + Number(fullRefresh.requests) / 300;
    const seedPerSecond = 100 * seedRequests;
    out.push(
      `The seed's approach (fresh login, hosts query, one VM query per host, VM get) vs this service, 64 hosts, same engine (${HOSTS} hosts / ${VMS} VMs)`,
      table(
        ['', 'engine requests per call', 'wall ms per call (median; ksm-scorer via h2load at 100/s)', 'engine requests/s at 100 calls/s'],
        [
          ['seed', seedRequests, fmt(median(seedMs), 1), seedPerSecond],
          [
            'ksm-scorer',
            0,
            fmt(ourMs, 3),
            `${fmt(ourPerSecond, 2)} (${during} in ${windowS} s of polls + ${String(fullRefresh.requests)}/300 s resync)`,
          ],
          ['ratio seed / ksm-scorer', '-', fmt(median(seedMs) / ourMs, 0), fmt(seedPerSecond / ourPerSecond, 0)],
        ],
      ),
      '',
    );
    out.push(
      `Target: >= 1000x fewer engine requests: ${fmt(seedPerSecond / ourPerSecond, 0)}x ${seedPerSecond / ourPerSecond >= 1000 ? 'met' : 'NOT met'}`,
    );
    return out.join('\n');
  } finally {
    await scorer.stop();
    await sim.stop();
  }
}

if (require.main === module) {
  grpcBench().then(
    (s) => console.log(s),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
