/**
 * Defects found by a hostile test run against the gRPC side (own TCP listener, codecs, health,
 * reflection) from outside, on loopback: each test is a regression test that fails on the code it was written against.
 */
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { ScoreHostsRequest } from '../src/generated/ksmscorer/v1/ScoreHostsRequest';
import type { ScoreHostsResponse__Output } from '../src/generated/ksmscorer/v1/ScoreHostsResponse';
import type { SimulatedEngine } from '../src/simulator/engine';
import { type Scorer, startScorer, startSimulator, unary } from './helpers';
import { killAll, type Proc, serveOnSimulator, spawnProc } from './processes';
import { grpcFrame, HEALTH_WATCH, rawCall, REFLECTION_V1, SCORE_HOSTS, SCORE_HOSTS_BATCH } from './raw-grpc';
import { RawH2Connection } from './raw-h2';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const MiB = 2 ** 20;
const OS = { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' };

/** A length-delimited protobuf field: tag byte, varint length, bytes. */
const field = (tag: number, bytes: Buffer) => Buffer.concat([Buffer.from([tag]), varint(bytes.length), bytes]);
/** ScoreHostsRequest { os: { type: "rhel_8x64" } }, every host of the inventory. */
const OS_REQUEST = field(0x12, field(0x0a, Buffer.from(OS.type)));

function varint(n: number): Buffer {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return Buffer.from(out);
}

const rssMb = (proc: Proc) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.child.pid}/status`, 'utf8'))![1]) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Samples the process's RSS every 50 ms while `work` runs; resolves with the work's result and the peak. */
async function peakRss<T>(proc: Proc, work: () => Promise<T>): Promise<{ result: T; peakMb: number }> {
  let peakMb = rssMb(proc);
  const timer = setInterval(() => {
    if (proc.child.exitCode === null) peakMb = Math.max(peakMb, rssMb(proc));
  }, 50);
  try {
    return { result: await work(), peakMb };
  } finally {
    clearInterval(timer);
  }
}

describe('hostile findings (gRPC side)', () => {
  const sessions: http2.ClientHttp2Session[] = [];
  const raws: RawH2Connection[] = [];
  let sim: SimulatedEngine | undefined;
  let scorer: Scorer | undefined;

  afterEach(async () => {
    for (const s of sessions.splice(0)) s.destroy();
    for (const c of raws.splice(0)) c.destroy();
    await killAll();
    await scorer?.close();
    scorer = undefined;
    await sim?.stop();
    sim = undefined;
  });

  /** `ksm-scorer serve` on the embedded simulator, with extra settings. */
  const serve = async (hosts: number, vms: number, env: Record<string, string> = {}) => {
    const { server, port } = await serveOnSimulator((args, e) => spawnProc(process.execPath, [CLI, ...args], { ...e, ...env }), hosts, vms);
    return { server, address: `127.0.0.1:${port}` };
  };
  const session = (address: string, settings: http2.Settings = {}) => {
    const s = http2.connect(`http://${address}`, { settings });
    s.on('error', () => {});
    sessions.push(s);
    return s;
  };
  /** Every log line on stderr is JSON (issue 7: no stray warnings or stack traces). */
  const expectJsonLogs = (proc: Proc) => {
    for (const line of proc.stderr.split('\n').filter((l) => l !== '')) expect(() => JSON.parse(line), line.slice(0, 300)).not.toThrow();
  };

  it('Health/Watch on many distinct service names does not keep them: RSS stays bounded after the calls end', async () => {
    const { server, address } = await serve(12, 240);
    const s = session(address);
    /** A Watch for `name`, cancelled by the client once the first status came. */
    const watchOnce = (name: Buffer) =>
      new Promise<void>((resolve) => {
        const req = s.request({ ':method': 'POST', ':path': HEALTH_WATCH, 'content-type': 'application/grpc', te: 'trailers' });
        req.on('data', () => req.close(http2.constants.NGHTTP2_CANCEL));
        req.on('error', () => {});
        req.on('close', () => resolve());
        req.end(grpcFrame(field(0x0a, name)));
      });
    const name = (i: number) => Buffer.alloc(MiB, 0x61).fill(String(i).padStart(8, '0'), 0, 8);
    for (let i = 0; i < 20; i++) await watchOnce(name(0)); // warm-up: the same name each time
    await sleep(500);
    const before = rssMb(server);
    // grpc-health-check keeps a Map entry (the name as its key) per service name ever watched,
    // and never deletes it: 400 names of 1 MiB leave ~400 MB behind.
    for (let i = 1; i <= 400; i++) await watchOnce(name(i));
    await sleep(1_000);
    expect(server.child.exitCode).toBeNull();
    expect(rssMb(server) - before, 'MB retained after 400 ended Watch calls').toBeLessThan(150);
  }, 60_000);

  it('a 4 MiB ScoreHostsBatch of empty items is refused without building every item: 8 at once keep RSS bounded', async () => {
    const { server, address } = await serve(12, 240);
    const s = session(address);
    // 2,097,152 items of two bytes each (an empty ScoreHostsRequest), within KSM_SCORER_MAX_REQUEST_MB;
    // the decoder builds all of them (and their host_ids arrays) before the 10,000-item check.
    const body = grpcFrame(Buffer.alloc(4 * MiB).fill(Buffer.from([0x0a, 0x00])));
    const before = rssMb(server);
    const { result, peakMb } = await peakRss(server, () => Promise.all(Array.from({ length: 8 }, () => rawCall(address, SCORE_HOSTS_BATCH, body, { session: s, timeoutMs: 60_000 }))));
    // Each is refused: INVALID_ARGUMENT naming `requests`, or (Node 22 and later, whose HTTP/2 session
    // memory bound is reached by 32 MiB arriving at once on one connection) a stream reset with no gRPC status.
    for (const r of result) if (r.grpcStatus !== undefined) expect(r).toMatchObject({ grpcStatus: grpc.status.INVALID_ARGUMENT, grpcMessage: expect.stringContaining('requests') });
    expect(result.some((r) => r.grpcStatus === grpc.status.INVALID_ARGUMENT)).toBe(true);
    expect(peakMb - before, 'peak MB above the start for 32 MiB of requests').toBeLessThan(500);
  }, 90_000);

  it('SIGTERM with ScoreHostsBatch calls at the documented maxima in flight exits within KSM_SCORER_SHUTDOWN_GRACE_SECONDS + 1 s', async () => {
    const { server, address } = await serve(500, 5_000, { KSM_SCORER_SHUTDOWN_GRACE_SECONDS: '1' });
    // 100 items x 500 hosts = 50,000 host scores: KSM_SCORER_MAX_BATCH_HOST_SCORES (it was 500,000, over a second a call).
    const batch = grpcFrame(Buffer.concat(Array.from({ length: 100 }, () => field(0x0a, OS_REQUEST))));
    const s = session(address);
    // Ten calls on one connection, each scored and encoded in one synchronous run.
    const calls = Array.from({ length: 10 }, () => rawCall(address, SCORE_HOSTS_BATCH, batch, { session: s, timeoutMs: 60_000 }));
    await sleep(500);
    const t0 = Date.now();
    server.child.kill('SIGTERM');
    const code = await server.exited;
    const tookMs = Date.now() - t0;
    await Promise.all(calls);
    expect(code).toBe(0);
    expectJsonLogs(server);
    // The grace period (1 s) plus a second, plus slack for a loaded 2-core machine; it took ~15 s.
    expect(tookMs).toBeLessThan(4_000);
  }, 90_000);

  it('a reflection stream whose client does not read its answers does not make the server buffer them without bound', async () => {
    const { server, address } = await serve(12, 240);
    // Initial window 0: the server may not send this client any DATA, so each answer waits in memory.
    const s = session(address, { initialWindowSize: 0 });
    const req = s.request({ ':method': 'POST', ':path': REFLECTION_V1, 'content-type': 'application/grpc', te: 'trailers' });
    req.on('error', () => {});
    // file_containing_symbol for a method: 50 bytes asked, ~1,160 bytes answered (its file descriptor).
    const one = grpcFrame(field(0x22, Buffer.from('ksmscorer.v1.HostScorerService.ScoreHosts')));
    const chunk = Buffer.concat(Array.from({ length: 20_000 }, () => one)); // 1 MB
    const before = rssMb(server);
    // Backpressure is the fix: once answers wait unread the server stops reading, so the client's writes stall.
    let stalled = false;
    for (let i = 0; i < 64 && !stalled; i++) {
      if (!req.write(chunk)) stalled = !(await Promise.race([new Promise((r) => req.once('drain', () => r(true))), sleep(3_000).then(() => false)]));
    }
    await sleep(2_000);
    expect(server.child.exitCode).toBeNull();
    // No first-message timeout applies once the first message came; only the connection's age (30 min) ends it.
    expect(rssMb(server) - before, 'MB held for 64 MB of requests').toBeLessThan(200);
  }, 90_000);

  it('KSM_SCORER_MAX_CONNECTIONS idle connections do not lock every real client out until the idle timeout (300 s)', async () => {
    sim = await startSimulator({ hosts: 6, vms: 60, seed: 13 });
    scorer = await startScorer(sim, { KSM_SCORER_MAX_CONNECTIONS: '3' });
    // Three connections that made the handshake and then do nothing: the handshake timeout no
    // longer applies and the idle limit is 300 s. The XML-RPC listener replaces the oldest idle
    // connection in this case; the gRPC listener closes every new one.
    for (let i = 0; i < 3; i++) raws.push(await RawH2Connection.open(scorer.service.port));
    await sleep(200);
    const res = await unary<ScoreHostsRequest, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', { os: OS }, { deadline: Date.now() + 8_000 });
    expect(res.scores).toHaveLength(6);
  }, 30_000);

  it('an unknown group field (wire types 3 and 4, valid protobuf) is skipped like any other unknown field', async () => {
    sim = await startSimulator({ hosts: 6, vms: 60, seed: 13 });
    scorer = await startScorer(sim);
    const plain = await rawCall(scorer.address, SCORE_HOSTS, grpcFrame(OS_REQUEST));
    expect(plain.grpcStatus).toBe(grpc.status.OK);
    // field 15 as a group holding a varint field: protobufjs and the other runtimes skip it; codec.ts answers INVALID_ARGUMENT.
    const withGroup = await rawCall(scorer.address, SCORE_HOSTS, grpcFrame(Buffer.concat([OS_REQUEST, Buffer.from([0x7b, 0x08, 0x01, 0x7c])])));
    expect(withGroup.grpcStatus, withGroup.grpcMessage).toBe(grpc.status.OK);
    expect(withGroup.body).toEqual(plain.body);
  });
});
