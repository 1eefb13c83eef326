/**
 * Issue 19's numbers: ScoreHosts latency of a probe client while another connection floods
 * WINDOW_UPDATE and PRIORITY frames, against the same probe without it, in one run: the flooding
 * connection's time to the cut, and p50/p99 with a single flood (until its cut) and with an
 * attacker that reconnects and floods again each time it is cut. Scorer pinned to CPU 0.
 */
import * as grpc from '@grpc/grpc-js';
import { controlFrames, flood, RawH2Connection } from '../raw-h2';
import { fmt, percentile, SCORE_HOSTS_PATH, scorerTypes, startEngineProcess, startScorerProcess, table, waitFor } from './lib';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const identity = (b: Buffer) => b;

/** Sequential calls until `over()`: sorted latencies (ms) and failures. */
async function probe(client: grpc.Client, body: Buffer, over: () => boolean): Promise<{ ms: number[]; failed: number }> {
  const ms: number[] = [];
  let failed = 0;
  while (!over()) {
    const t0 = performance.now();
    const ok = await new Promise<boolean>((resolve) =>
      client.makeUnaryRequest(SCORE_HOSTS_PATH, identity, identity, body, { deadline: Date.now() + 5_000 }, (err) => resolve(!err)),
    );
    if (ok) ms.push(performance.now() - t0);
    else failed++;
  }
  return { ms: ms.sort((a, b) => a - b), failed };
}

export async function controlFloodBench(): Promise<string> {
  const engine = await startEngineProcess(200, 4_000, 1);
  const { child: scorer, address } = await startScorerProcess(engine, {}, 0);
  const port = Number(address.split(':').at(-1));
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const batch = controlFrames(4_096);
  try {
    await waitFor(() => scorer.logs.find((l) => l.msg === 'inventory refreshed'), 'inventory');
    const body = Buffer.from(
      scorerTypes()
        .Request.encode({ os: { type: 'rhel_8x64' } })
        .finish(),
    );
    const until = (ms: number) => {
      const end = performance.now() + ms;
      return () => performance.now() >= end;
    };
    await probe(client, body, until(1_000)); // warm-up
    const quiet = await probe(client, body, until(SECONDS * 1_000));

    // One flood, measured until it is cut.
    const one = await RawH2Connection.open(port);
    const t0 = performance.now();
    flood(one, batch);
    let cutMs = NaN;
    void one.waitClosed(10_000).then((c) => (cutMs = c ? performance.now() - t0 : NaN));
    const single = await probe(client, body, () => one.closed || performance.now() - t0 > 10_000);
    one.destroy();

    // An attacker that reconnects as soon as it is cut.
    let stopped = false;
    let cuts = 0;
    let current: RawH2Connection | undefined;
    const attack = (async () => {
      while (!stopped) {
        current = await RawH2Connection.open(port).catch(() => undefined);
        if (current === undefined) continue;
        await flood(current, batch).done;
        if (!stopped) cuts++;
        current.destroy();
      }
    })();
    const reconnecting = await probe(client, body, until(SECONDS * 1_000));
    stopped = true;
    current?.destroy();
    await attack;

    const row = (name: string, r: { ms: number[]; failed: number }) => [
      name,
      r.ms.length,
      r.failed,
      fmt(percentile(r.ms, 50), 2),
      fmt(percentile(r.ms, 99), 2),
      fmt(percentile(r.ms, 99) / percentile(quiet.ms, 99), 2),
    ];
    return [
      `Control frame flood (WINDOW_UPDATE + PRIORITY, no calls) against ScoreHosts (200 hosts), probe: one grpc-js client, calls one after another; single flood cut after ${fmt(cutMs, 0)} ms; reconnecting attacker cut ${cuts} times in ${SECONDS} s`,
      table(
        ['probe', 'calls ok', 'failed', 'p50 ms', 'p99 ms', 'p99 / quiet p99'],
        [row('quiet', quiet), row('single flood, until its cut', single), row('attacker reconnecting', reconnecting)],
      ),
    ].join('\n');
  } finally {
    client.close();
    await scorer.stop();
    await engine.child.stop();
  }
}

if (require.main === module) {
  controlFloodBench().then(
    (s) => console.log(s),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
