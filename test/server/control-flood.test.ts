/**
 * Issue 19: a connection that floods control frames (WINDOW_UPDATE and PRIORITY, which nghttp2
 * answers with nothing, so its outbound-queue flood guard never trips) without making calls is
 * cut, and the calls of other clients go on being answered meanwhile. The latency ratio is
 * printed here; `make bench` (BENCH_ONLY=control-flood) reports it as a benchmark.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { type Scorer, startScorer, startSimulator, unary } from '../helpers';
import { controlFrames, flood, FRAME, frame, H2_ERROR, RawH2Connection } from '../raw-h2';

const OS = { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' };

/** Calls ScoreHosts one after another for `ms`, or until `until` resolves: each call's latency (ms), and how many failed. */
async function probe(scorer: Scorer, ms: number, until?: Promise<unknown>): Promise<{ latencies: number[]; failed: number }> {
  const latencies: number[] = [];
  let failed = 0;
  let over = false;
  void until?.then(() => (over = true));
  const end = performance.now() + ms;
  while (performance.now() < end && !over) {
    const t0 = performance.now();
    try {
      await unary(scorer.client, 'ScoreHosts', { os: OS }, { deadline: Date.now() + 5_000 });
      latencies.push(performance.now() - t0);
    } catch {
      failed++;
    }
  }
  return { latencies, failed };
}

const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!;

describe('control frame flood', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer;

  beforeAll(async () => {
    sim = await startSimulator({ hosts: 20, vms: 200, seed: 19 });
    scorer = await startScorer(sim);
    await probe(scorer, 300); // warm up
  });
  afterAll(async () => {
    await scorer.close();
    await sim.stop();
  });

  it('a connection sending WINDOW_UPDATE and PRIORITY frames and no calls is cut within 10 s; other calls keep succeeding', async () => {
    const quiet = await probe(scorer, 1_500);
    const attacker = await RawH2Connection.open(scorer.service.port);
    const t0 = performance.now();
    const f = flood(attacker, controlFrames(4_096));
    const closed = attacker.waitClosed(10_000);
    const during = probe(scorer, 10_000, closed);
    const cut = await closed;
    const cutMs = performance.now() - t0;
    f.stop();
    const busy = await during;
    const bytes = await f.done;
    const total = busy.latencies.length + busy.failed;
    console.info(
      `control flood: cut ${cut} after ${Math.round(cutMs)} ms (${Math.round(bytes / 2 ** 20)} MiB sent, GOAWAY ${attacker.goawayCode()}); ` +
        `probe ${busy.latencies.length}/${total} ok, p99 ${p99(quiet.latencies).toFixed(2)} ms quiet, ${p99(busy.latencies).toFixed(2)} ms during (ratio ${(p99(busy.latencies) / p99(quiet.latencies)).toFixed(2)})`,
    );
    expect(cut).toBe(true);
    expect(attacker.goawayCode()).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
    expect(busy.latencies.length / total).toBeGreaterThanOrEqual(0.95);
  });

  it('a client answering PINGs and sending a few SETTINGS and WINDOW_UPDATEs with its calls is not cut', async () => {
    const c = await RawH2Connection.open(scorer.service.port);
    const increment = Buffer.alloc(4);
    increment.writeUInt32BE(65_535);
    for (let i = 0; i < 20; i++) {
      c.write(frame(FRAME.WINDOW_UPDATE, 0, 0, increment), frame(FRAME.SETTINGS, 0, 0), frame(FRAME.PING, 0, 0, Buffer.alloc(8)));
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await c.waitClosed(1_500)).toBe(false);
    c.destroy();
  });
});
