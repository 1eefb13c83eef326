/**
 * Issue 10's number: what the metrics cost ScoreHosts (64 hosts). Three
 * scorers on the same engine and the same core: one with metrics on (the
 * default), two with KSM_SCORER_METRICS_LISTEN=off, loaded AT THE SAME TIME by
 * three h2load runs (started in a rotating order), so whatever else the
 * machine does falls on all alike. Per run: the ratio of QPS and of each
 * scorer's own CPU time per call (from schedstat), which is what bounds
 * throughput on a saturated core, for on/off and for the two identical "off"
 * scorers (the control: how far this machine lets identical ones differ).
 * Medians over the runs with their spread. The "on" scorer's /metrics is
 * scraped after, to show the calls were counted. What the metrics add to a
 * call is also timed in-process (the same call with and without them,
 * millions of times) and set against the CPU per call measured.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Metrics } from '../../src/metrics/metrics';
import { GrpcServerMetrics } from '../../src/server/grpc-metrics';
import {
  benchDir,
  checkGrpc,
  cpuSeconds,
  fmt,
  frame,
  h2loadAsync,
  median,
  rawCall,
  SCORE_HOSTS_PATH,
  scorerTypes,
  spread,
  startEngineProcess,
  startScorerProcess,
  table,
  waitFor,
} from './lib';

const HOSTS = 64;
const RUNS = Number(process.env.BENCH_METRICS_RUNS ?? 15);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const NAMES = ['on', 'off', 'control'] as const;

export async function metricsCostBench(): Promise<string> {
  const { Request, Response } = scorerTypes();
  const engine = await startEngineProcess(1_000, 20_000, 1);
  const scorers = [
    await startScorerProcess(engine, { KSM_SCORER_METRICS_LISTEN: '127.0.0.1:0' }, 0),
    await startScorerProcess(engine, { KSM_SCORER_METRICS_LISTEN: 'off' }, 0),
    await startScorerProcess(engine, { KSM_SCORER_METRICS_LISTEN: 'off' }, 0),
  ];
  try {
    for (const s of scorers) await waitFor(() => s.child.logs.find((l) => l.msg === 'inventory refreshed'), 'inventory');
    const all = Response.decode(
      (await rawCall(scorers[0]!.address, SCORE_HOSTS_PATH, Request.encode({ os: { type: 'rhel_8x64' } }).finish())).bytes,
    ) as unknown as { scores: { host_id: string }[] };
    const body = Request.encode({
      os: { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' },
      host_ids: all.scores.slice(0, HOSTS).map((s) => s.host_id),
    }).finish();
    const frameFile = join(benchDir, `frame-metrics-${HOSTS}.bin`);
    writeFileSync(frameFile, frame(body));

    const qps: number[][] = [[], [], []];
    const cpuUs: number[][] = [[], [], []];
    for (let i = 0; i < RUNS; i++) {
      for (const s of scorers) await checkGrpc(s.address, body, HOSTS);
      const order = [0, 1, 2].map((k) => (k + i) % 3);
      const cpu0 = scorers.map((s) => cpuSeconds(s.pid));
      const results: Promise<{ k: number; qps: number; succeeded: number; failed: number }>[] = order.map((k) =>
        h2loadAsync(scorers[k]!.address, SCORE_HOSTS_PATH, frameFile, { clients: 2, streams: 32, seconds: SECONDS, warmUp: false }).then(
          (r) => ({ ...r, k }),
        ),
      );
      for (const r of await Promise.all(results)) {
        if (r.failed > 0 || r.succeeded === 0)
          throw new Error(`${r.failed} failed, ${r.succeeded} succeeded requests against ${scorers[r.k]!.address}`);
        qps[r.k]!.push(r.qps);
        cpuUs[r.k]!.push(((cpuSeconds(scorers[r.k]!.pid) - cpu0[r.k]!) / r.succeeded) * 1e6);
      }
    }
    const ratios = (xs: number[][], k: number) => xs[k]!.map((x, i) => x / xs[1]![i]!);

    const metricsUrl = String(scorers[0]!.child.logs.find((l) => l.msg === 'ksm-scorer listening')!.metrics);
    const scraped = await (await fetch(metricsUrl)).text();
    const counted = /grpc_server_handled_total\{[^}]*grpc_method="ScoreHosts"[^}]*grpc_code="OK"\} (\d+)/.exec(scraped)?.[1];

    const layerNs = metricsNsPerCall();
    const layerShare = layerNs / 1000 / median(cpuUs[1]!);
    // End to end, the worse of the two views: less QPS, or more CPU per call. The control says how far
    // two identical scorers land apart in the same runs: a difference within it is not measured.
    const cost = Math.max(1 - median(ratios(qps, 0)), median(ratios(cpuUs, 0)) - 1);
    const noise = Math.max(Math.abs(1 - median(ratios(qps, 2))), Math.abs(median(ratios(cpuUs, 2)) - 1));
    const pct = (x: number) => `${fmt(x * 100, 1)}%`;
    return [
      `Metrics cost, ScoreHosts ${HOSTS} hosts, three scorers on CPU 0 loaded at once (h2load 2x32 each, ${SECONDS} s), ${RUNS} runs: median (min-max)`,
      table(
        ['scorer', 'QPS', 'CPU µs per call', 'QPS / off', 'CPU per call / off'],
        NAMES.map((name, k) => [
          name === 'on' ? 'metrics on' : name === 'off' ? 'metrics off' : 'metrics off (control)',
          spread(qps[k]!, 0),
          spread(cpuUs[k]!, 1),
          k === 1 ? '-' : spread(ratios(qps, k), 3),
          k === 1 ? '-' : spread(ratios(cpuUs, k), 3),
        ]),
      ),
      `ScoreHosts calls counted OK by the "on" scorer's /metrics: ${counted ?? 'missing'}`,
      `The metrics alone (interceptor pass-through and handler wrapper), in-process: ${fmt(layerNs, 0)} ns per call (median of 5 x 2,000,000) = ${fmt(layerShare * 100, 2)}% of the CPU per call without metrics above`,
      `Target: metrics cost < 3% of throughput: in-process ${fmt(layerShare * 100, 2)}%; end to end ${pct(cost)} (QPS or CPU per call, the worse), identical scorers ${pct(noise)} apart: ${layerShare < 0.03 && cost < 0.03 + noise ? 'met' : 'NOT met'}`,
    ].join('\n');
  } finally {
    for (const s of scorers) await s.child.stop();
    await engine.child.stop();
  }
}

/**
 * ns per ScoreHosts call that the metrics add: the interceptor's pass-through
 * and the counting wrapper around the handler, against the bare handler, with
 * a stand-in for grpc-js's call and a handler that answers at once.
 */
function metricsNsPerCall(): number {
  const grpcMetrics = new GrpcServerMetrics(new Metrics());
  const method = {
    path: SCORE_HOSTS_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  };
  const answer = Buffer.alloc(0);
  type Handler = (call: unknown, callback: (err: unknown, value?: unknown) => void) => void;
  const bare: { ScoreHosts: Handler } = { ScoreHosts: (_call, callback) => callback(null, answer) };
  const counted = grpcMetrics.instrument({ ScoreHosts: method }, bare);
  const base = { getDeadline: () => Infinity } as unknown as grpc.ServerInterceptingCallInterface;
  let answered = 0;
  const callback = () => {
    answered++;
  };
  const time = (once: () => void) => {
    const n = 2_000_000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) once();
    return Number(process.hrtime.bigint() - t0) / n;
  };
  const deltas: number[] = [];
  for (let i = 0; i < 6; i++) {
    const without = time(() => bare.ScoreHosts(base, callback));
    const withIt = time(() =>
      counted.ScoreHosts(grpcMetrics.interceptor(method as grpc.ServerMethodDefinition<unknown, unknown>, base), callback),
    );
    if (i > 0) deltas.push(withIt - without); // the first round warms up
  }
  if (answered !== 24_000_000) throw new Error(`${answered} answers`);
  return median(deltas);
}

if (require.main === module) {
  metricsCostBench().then(
    (s) => console.log(s),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
