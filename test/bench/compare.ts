/**
 * This build against a baseline build (another commit's dist/cli.js, given
 * as argv[2]; argv[3] may name another build to compare instead of this one) in one run, on the same engine: ScoreHosts QPS at 8, 64 and 512
 * hosts, each server loaded in turn, repeated; medians with spread and the
 * ratio this / baseline. `make bench-compare BASELINE=<commit>` runs it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  benchDir,
  checkGrpc,
  fmt,
  frame,
  h2load,
  median,
  rawCall,
  SCORE_HOSTS_PATH,
  scorerTypes,
  startEngineProcess,
  startScorerProcess,
  table,
  waitFor,
} from './lib';

const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);

async function main(baselineCli: string, currentCli: string | undefined): Promise<void> {
  const { Request, Response } = scorerTypes();
  const engine = await startEngineProcess(1_000, 20_000, 1);
  const current = await startScorerProcess(engine, {}, 0, currentCli);
  const baseline = await startScorerProcess(engine, {}, 0, baselineCli);
  try {
    for (const s of [current, baseline]) await waitFor(() => s.child.logs.find((l) => l.msg === 'inventory refreshed'), 'inventory');
    const all = Response.decode(
      (await rawCall(current.address, SCORE_HOSTS_PATH, Request.encode({ os: { type: 'rhel_8x64' } }).finish())).bytes,
    ) as unknown as {
      scores: { host_id: string }[];
    };
    const hostIds = all.scores.map((s) => s.host_id);
    const rows: (string | number)[][] = [];
    for (const n of [8, 64, 512]) {
      const body = Request.encode({
        os: { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' },
        host_ids: hostIds.slice(0, n),
      }).finish();
      const file = join(benchDir, `compare-${n}.bin`);
      writeFileSync(file, frame(body));
      const qps: Record<'current' | 'baseline', number[]> = { current: [], baseline: [] };
      for (let i = 0; i < REPEATS; i++) {
        // Alternating, so drift on a shared machine hits both alike.
        for (const [name, s] of [
          ['current', current],
          ['baseline', baseline],
        ] as const) {
          await checkGrpc(s.address, body, n);
          const r = h2load(s.address, SCORE_HOSTS_PATH, file, { clients: 4, streams: 32, seconds: SECONDS });
          if (r.failed > 0) throw new Error(`${r.failed} failed requests against ${name}`);
          qps[name].push(r.qps);
        }
      }
      const spread = (xs: number[]) => `${fmt(median(xs), 0)} (${fmt(Math.min(...xs), 0)}-${fmt(Math.max(...xs), 0)})`;
      const ratios = qps.current.map((q, i) => q / qps.baseline[i]!);
      rows.push([
        n,
        spread(qps.current),
        spread(qps.baseline),
        `${fmt(median(ratios))} (${fmt(Math.min(...ratios))}-${fmt(Math.max(...ratios))})`,
      ]);
    }
    console.log(`ScoreHosts QPS, this build vs baseline, h2load 4x32, ${SECONDS} s, ${REPEATS} alternating runs: median (min-max)`);
    console.log(table(['hosts', 'this build', 'baseline', 'ratio (paired runs)'], rows));
  } finally {
    await current.child.stop();
    await baseline.child.stop();
    await engine.child.stop();
  }
}

// argv: the baseline's cli.js, and optionally another build's to stand for "this build".
main(process.argv[2]!, process.argv[3]).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
