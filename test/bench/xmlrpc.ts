/**
 * Issue 9's numbers: runCostFunctions over XML-RPC (the engine's request
 * form, one VM by id) at 60 and 500 hosts, next to gRPC ScoreHosts for the
 * same VM and hosts in the same run: calls/s with the same number of calls
 * in flight, and p50/p99 at a fixed 1,000 calls/s on one connection.
 * Scorer pinned to CPU 0; h2load and the engine simulator to CPU 1.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { engineCostCall, parseResponse, plain } from '../scheduler-proxy/wire';
import {
  benchDir,
  checkGrpc,
  engineVms,
  fmt,
  frame,
  h2load,
  median,
  percentile,
  rawCall,
  SCORE_HOSTS_PATH,
  scorerTypes,
  spread,
  startEngineProcess,
  startScorerProcess,
  table,
  waitFor,
} from './lib';

const HOSTS = 1_000;
const VMS = 20_000;
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
/** Calls in flight: XML-RPC over HTTP/1.1 has one per connection, so gRPC gets as many connections with one stream each. */
const IN_FLIGHT = 16;

/** A strict read of the answer: result_code 0 and `hosts` int weights; h2load only sees HTTP 200, which a fault also is. */
async function checkXmlRpc(port: number, body: string, hosts: number): Promise<number> {
  const { Agent, request } = await import('undici');
  // A connection of its own: spawnSync (h2load) blocks this process's timers, so a pooled one may have been closed unnoticed.
  const dispatcher = new Agent();
  const res = await request(`http://127.0.0.1:${port}/`, { method: 'POST', body, headers: { 'content-type': 'text/xml' }, dispatcher });
  const text = await res.body.text();
  await dispatcher.close();
  const r = parseResponse(text);
  if (!('value' in r)) throw new Error(`fault: ${r.fault.message}`);
  const answer = plain(r.value) as { result_code: number; result: [string, number, string][] };
  if (answer.result_code !== 0 || answer.result.length !== hosts) throw new Error(`unexpected answer: ${text.slice(0, 300)}`);
  return Buffer.byteLength(text);
}

export async function xmlRpcBench(): Promise<string> {
  const engine = await startEngineProcess(HOSTS, VMS, 1);
  const { child: scorer, address } = await startScorerProcess(engine, { KSM_SCORER_OVIRT_PROXY_LISTEN: '127.0.0.1:0' }, 0);
  try {
    await waitFor(() => scorer.logs.find((l) => l.msg === 'inventory refreshed'), 'inventory');
    const proxyLog = await waitFor(() => scorer.logs.find((l) => l.msg === 'oVirt scheduler proxy listening'), 'scheduler proxy');
    const proxyPort = Number(String(proxyLog.address).split(':').at(-1));
    const { Request, Response } = scorerTypes();
    const all = Response.decode(
      (await rawCall(address, SCORE_HOSTS_PATH, Request.encode({ os: { type: 'rhel_8x64' } }).finish())).bytes,
    ) as unknown as { scores: { host_id: string }[] };
    const hostIds = all.scores.map((s) => s.host_id);
    const vmId = (await engineVms(engine, 200)).find((v) => v.host !== undefined)!.id;

    const rows: (string | number)[][] = [];
    for (const n of [60, 500]) {
      const hosts = hostIds.slice(0, n);
      const xml = engineCostCall(vmId, hosts);
      const xmlFile = join(benchDir, `xmlrpc-${n}.xml`);
      writeFileSync(xmlFile, xml);
      const grpcBody = Request.encode({ vm_id: vmId, host_ids: hosts }).finish();
      const grpcFile = join(benchDir, `frame-vm-${n}.bin`);
      writeFileSync(grpcFile, frame(grpcBody));
      const responseBytes = await checkXmlRpc(proxyPort, xml, n);

      const qps = { xml: [] as number[], grpc: [] as number[] };
      const p50 = { xml: [] as number[], grpc: [] as number[] };
      const p99 = { xml: [] as number[], grpc: [] as number[] };
      for (let i = 0; i < REPEATS; i++) {
        for (const kind of ['xml', 'grpc'] as const) {
          const target = kind === 'xml' ? `127.0.0.1:${proxyPort}` : address;
          const path = kind === 'xml' ? '/' : SCORE_HOSTS_PATH;
          const file = kind === 'xml' ? xmlFile : grpcFile;
          const check = () => (kind === 'xml' ? checkXmlRpc(proxyPort, xml, n) : checkGrpc(address, grpcBody, n));
          await check();
          const sat = h2load(target, path, file, { clients: IN_FLIGHT, streams: 1, seconds: SECONDS, xml: kind === 'xml' });
          const fixed = h2load(target, path, file, { clients: 1, streams: 1, seconds: SECONDS, rps: 1_000, xml: kind === 'xml' });
          if (sat.failed + fixed.failed > 0) throw new Error(`${sat.failed + fixed.failed} failed ${kind} requests`);
          await check();
          qps[kind].push(sat.qps);
          p50[kind].push(percentile(fixed.latenciesMs, 50));
          p99[kind].push(percentile(fixed.latenciesMs, 99));
        }
      }
      rows.push(
        [
          n,
          'XML-RPC runCostFunctions',
          `${Buffer.byteLength(xml)} / ${responseBytes}`,
          spread(qps.xml, 0),
          fmt(1e6 / median(qps.xml), 0),
          `${spread(p50.xml, 3)} / ${spread(p99.xml, 3)}`,
        ],
        [
          n,
          'gRPC ScoreHosts (vm_id)',
          `${grpcBody.length + 5} / -`,
          spread(qps.grpc, 0),
          fmt(1e6 / median(qps.grpc), 0),
          `${spread(p50.grpc, 3)} / ${spread(p99.grpc, 3)}`,
        ],
        [
          n,
          'ratio XML-RPC / gRPC',
          '',
          fmt(median(qps.xml) / median(qps.grpc)),
          '',
          `${fmt(median(p50.xml) / median(p50.grpc))} / ${fmt(median(p99.xml) / median(p99.grpc))}`,
        ],
      );
    }
    return [
      `The oVirt scheduler proxy: runCostFunctions in the engine's form (Apache XML-RPC, one VM by id) vs ScoreHosts for the same VM and hosts, engine of ${HOSTS} hosts / ${VMS} VMs, ${REPEATS} runs: median (min-max)`,
      table(
        [
          'hosts',
          'call',
          'request / response bytes',
          `calls/s (${IN_FLIGHT} in flight, ${SECONDS} s)`,
          'µs per call at that rate (server on 1 core)',
          'p50 / p99 ms at 1,000 calls/s (one connection)',
        ],
        rows,
      ),
    ].join('\n');
  } finally {
    await scorer.stop();
    await engine.child.stop();
  }
}

if (require.main === module) {
  xmlRpcBench().then(
    (s) => console.log(s),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
