/**
 * Memory a `ksm-scorer serve` process holds while hostile gRPC calls come and after they end: its RSS,
 * read from /proc, stays bounded whatever the calls' names, sizes and reading pace (loopback only).
 */
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, type Proc, serveCli } from '../processes';
import { field, grpcFrame, HEALTH_WATCH, rawCall, REFLECTION_V1, SCORE_HOSTS_BATCH } from '../raw-grpc';

const MiB = 2 ** 20;

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

describe('memory of a `ksm-scorer serve` process under hostile gRPC calls', () => {
  const sessions: http2.ClientHttp2Session[] = [];

  afterEach(async () => {
    for (const s of sessions.splice(0)) s.destroy();
    await killAll();
  });

  const session = (address: string, settings: http2.Settings = {}) => {
    const s = http2.connect(`http://${address}`, { settings });
    s.on('error', () => {});
    sessions.push(s);
    return s;
  };

  it('Health/Watch on many distinct service names does not keep them: RSS stays bounded after the calls end', async () => {
    const { server, address } = await serveCli(12, 240);
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
    const { server, address } = await serveCli(12, 240);
    const s = session(address);
    // 2,097,152 items of two bytes each (an empty ScoreHostsRequest), within KSM_SCORER_MAX_REQUEST_MB;
    // the decoder builds all of them (and their host_ids arrays) before the 10,000-item check.
    const body = grpcFrame(Buffer.alloc(4 * MiB).fill(Buffer.from([0x0a, 0x00])));
    const before = rssMb(server);
    const { result, peakMb } = await peakRss(server, () =>
      Promise.all(Array.from({ length: 8 }, () => rawCall(address, SCORE_HOSTS_BATCH, body, { session: s, timeoutMs: 60_000 }))),
    );
    // Each is refused: INVALID_ARGUMENT naming `requests`, or (Node 22 and later, whose HTTP/2 session
    // memory bound is reached by 32 MiB arriving at once on one connection) a stream reset with no gRPC status.
    for (const r of result.filter((answer) => answer.grpcStatus !== undefined)) {
      expect(r).toMatchObject({ grpcStatus: grpc.status.INVALID_ARGUMENT, grpcMessage: expect.stringContaining('requests') });
    }
    expect(result.some((r) => r.grpcStatus === grpc.status.INVALID_ARGUMENT)).toBe(true);
    expect(peakMb - before, 'peak MB above the start for 32 MiB of requests').toBeLessThan(500);
  }, 90_000);

  it('a reflection stream whose client does not read its answers does not make the server buffer them without bound', async () => {
    const { server, address } = await serveCli(12, 240);
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
      if (!req.write(chunk))
        stalled = !(await Promise.race([new Promise((r) => req.once('drain', () => r(true))), sleep(3_000).then(() => false)]));
    }
    await sleep(2_000);
    expect(server.child.exitCode).toBeNull();
    // No first-message timeout applies once the first message came; only the connection's age (30 min) ends it.
    expect(rssMb(server) - before, 'MB held for 64 MB of requests').toBeLessThan(200);
  }, 90_000);
});
