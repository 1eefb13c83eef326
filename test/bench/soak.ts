/**
 * make soak: minutes of mixed load against one scorer while the engine keeps
 * changing (VMs start, stop, migrate, change OS, each with its event) and
 * full refreshes come every 30 s. Prints RSS, generation and engine requests
 * every 10 s, and fails when RSS grows past the level after warm-up by more
 * than SOAK_RSS_MARGIN_MB. Not part of make test: it takes minutes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  benchDir,
  checkGrpc,
  fmt,
  frame,
  rawCall,
  rssMb,
  SCORE_HOSTS_PATH,
  scorerTypes,
  startEngineProcess,
  startScorerProcess,
  table,
  waitFor,
} from './lib';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 180);
const WARM_UP_S = 30;
const MARGIN_MB = Number(process.env.SOAK_RSS_MARGIN_MB ?? 64);
const BATCH_PATH = '/ksmscorer.v1.HostScorerService/ScoreHostsBatch';

/** h2load at a fixed rate for `seconds`, in the background. */
function load(address: string, path: string, body: Uint8Array, rps: number, seconds: number): ChildProcess {
  const file = join(benchDir, `soak-${randomUUID()}.bin`);
  writeFileSync(file, frame(body));
  return spawn(
    'h2load',
    [
      '-D',
      String(seconds),
      '-c',
      '1',
      '-m',
      '4',
      '-t',
      '1',
      `--rps=${rps}`,
      '-d',
      file,
      '-H',
      'content-type: application/grpc',
      '-H',
      'te: trailers',
      `http://${address}${path}`,
    ],
    {
      stdio: 'ignore',
    },
  );
}

async function main(): Promise<number> {
  const { Request, Response, BatchRequest } = scorerTypes();
  // 500 hosts, 10,000 VMs, 20 changes a second.
  const churning = await startEngineProcess(500, 10_000, 1, 20);
  const {
    child: scorer,
    address,
    pid,
  } = await startScorerProcess(churning, { KSM_SCORER_REFRESH_SECONDS: '30', KSM_SCORER_EVENTS_SECONDS: '2' }, 0);
  const loads: ChildProcess[] = [];
  try {
    await waitFor(() => scorer.logs.find((l) => l.msg === 'inventory refreshed'), 'inventory');
    const all = Response.decode(
      (await rawCall(address, SCORE_HOSTS_PATH, Request.encode({ os: { type: 'rhel_8x64' } }).finish())).bytes,
    ) as unknown as {
      scores: { host_id: string }[];
    };
    const hostIds = all.scores.map((s) => s.host_id);
    const some = (n: number, from: number) => hostIds.slice(from % hostIds.length, (from % hostIds.length) + n);
    const byOs = Request.encode({ os: { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' }, host_ids: some(64, 0) }).finish();
    await checkGrpc(address, byOs, 64);
    // The mix: by OS over 64 hosts, the whole inventory ranked, batches, and unknown ids (remembered, bounded).
    loads.push(load(address, SCORE_HOSTS_PATH, byOs, 500, SECONDS));
    loads.push(load(address, SCORE_HOSTS_PATH, Request.encode({ os: { type: 'windows_2022' } }).finish(), 50, SECONDS));
    loads.push(
      load(
        address,
        BATCH_PATH,
        BatchRequest.encode({
          requests: Array.from({ length: 20 }, (_, i) => ({ os: { type: 'rhel_9x64' }, host_ids: some(64, i * 7) })),
        }).finish(),
        50,
        SECONDS,
      ),
    );
    loads.push(
      load(
        address,
        SCORE_HOSTS_PATH,
        Request.encode({ vm_id: randomUUID(), host_ids: [randomUUID(), ...some(8, 3)] }).finish(),
        200,
        SECONDS,
      ),
    );

    const rows: (string | number)[][] = [];
    let baseline = NaN;
    let most = 0;
    const start = Date.now();
    for (let t = 10; t <= SECONDS; t += 10) {
      await new Promise((r) => setTimeout(r, start + t * 1000 - Date.now()));
      const rss = rssMb(pid);
      if (t === WARM_UP_S) baseline = rss;
      if (t > WARM_UP_S) most = Math.max(most, rss);
      const refreshed = scorer.logs.filter((l) => l.msg === 'inventory refreshed').length;
      const now = Response.decode((await rawCall(address, SCORE_HOSTS_PATH, byOs)).bytes) as unknown as {
        inventory: { generation: string };
      };
      const row = [
        t,
        rss,
        String(now.inventory.generation),
        refreshed,
        scorer.logs.filter((l) => l.level === 'warn' || l.level === 'error').length,
      ];
      rows.push(row);
      console.log(`t=${t}s rss=${rss} MB generation=${row[2]} full refreshes=${refreshed} warnings=${row[4]}`);
    }
    await checkGrpc(address, byOs, 64);
    console.log(table(['t (s)', 'RSS (MB)', 'generation', 'full refreshes', 'warn/error log lines'], rows));
    const grew = most - baseline;
    const ok = grew <= MARGIN_MB;
    console.log(
      `RSS after ${WARM_UP_S} s warm-up ${baseline} MB, highest after ${most} MB: grew ${fmt(grew, 0)} MB, margin ${MARGIN_MB} MB: ${ok ? 'OK' : 'FAILED'}`,
    );
    return ok ? 0 : 1;
  } finally {
    for (const l of loads) l.kill('SIGKILL');
    await scorer.stop();
    await churning.child.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
