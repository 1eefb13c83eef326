/**
 * Defects found by a hostile run against the ScoreHosts / ScoreHostsBatch fast path (score tables,
 * host lists remembered by their bytes), from outside on loopback: each test fails on the code it was written against.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import type { SimulatedEngine } from '../src/simulator/engine';
import { type Scorer, startScorer, startSimulator, unary } from './helpers';
import { grpcFrame, rawCall, SCORE_HOSTS, SCORE_HOSTS_BATCH } from './raw-grpc';

const INVALID_ARGUMENT = 3;

function varint(n: number): Buffer {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return Buffer.from(out);
}
/** A length-delimited protobuf field: tag byte, varint length, bytes. */
const field = (tag: number, bytes: Buffer) => Buffer.concat([Buffer.from([tag]), varint(bytes.length), bytes]);
const hostId = (id: string) => field(0x1a, Buffer.from(id));
const OS_FIELD = field(0x12, field(0x0a, Buffer.from('rhel_8x64')));

/** Two valid ids; the first ends in "0000", which also parses as two unknown varint fields (field 6 = 0x30, value 0x30). */
const X = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaa0000';
const Y = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
/** host_ids [X, Y]. */
const VALID = Buffer.concat([OS_FIELD, hostId(X), hostId(Y)]);
/**
 * host_ids ["aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaa" (32 chars: not a UUID), Y], with the
 * bytes "0000" (two unknown fields) between: from the first id's first byte to the
 * last id's last byte, the very bytes of VALID, only the first id's length prefix differs.
 */
const INVALID = Buffer.concat([OS_FIELD, hostId(X.slice(0, 32)), Buffer.from(X.slice(32)), hostId(Y)]);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap and buffers held after full collections: what the process keeps. */
function heldBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** The sum of ksm_scorer_score_table_bytes over its parts, as /metrics reports it. */
async function reportedBytes(scorer: Scorer): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${scorer.service.metricsPort}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(/^ksm_scorer_score_table_bytes\{part="[a-z_]+"\} (\d+)$/gm)) sum += Number(m[1]);
  return sum;
}

describe('hostile findings: score tables fast path', () => {
  let sim: SimulatedEngine | undefined;
  let scorer: Scorer | undefined;
  afterEach(async () => {
    await scorer?.close();
    await sim?.stop();
    scorer = undefined;
    sim = undefined;
  });

  it('a host id list that is not valid is rejected even after a valid list with the same bytes from first id to last was remembered', async () => {
    sim = await startSimulator();
    scorer = await startScorer(sim);
    // Sent first, the invalid list is rejected, naming the field.
    const before = await rawCall(scorer.address, SCORE_HOSTS, grpcFrame(INVALID), { timeoutMs: 5_000 });
    expect(before.grpcStatus).toBe(INVALID_ARGUMENT);
    expect(before.grpcMessage).toContain('host_ids[0]');
    const valid = await rawCall(scorer.address, SCORE_HOSTS, grpcFrame(VALID), { timeoutMs: 5_000 });
    expect(valid.grpcStatus).toBe(0);
    // The remembered list's key and byte compare start at the first id's content, so its length prefix is never compared.
    const after = await rawCall(scorer.address, SCORE_HOSTS, grpcFrame(INVALID), { timeoutMs: 5_000 });
    expect(after.grpcStatus).toBe(INVALID_ARGUMENT);
    expect(after.grpcMessage).toContain('host_ids[0]');
  });

  it('a batch item with an invalid host id list is an error even when the item before has the same bytes from first id to last', async () => {
    sim = await startSimulator();
    // No lists remembered at all: the batch's own reuse of the previous item's lookups is enough.
    scorer = await startScorer(sim, { KSM_SCORER_SCORE_CACHE_MB: '0' });
    const alone = await rawCall(scorer.address, SCORE_HOSTS_BATCH, grpcFrame(field(0x0a, INVALID)), { timeoutMs: 5_000 });
    expect(alone.grpcStatus).toBe(0);
    expect(alone.body.includes(Buffer.from('requests[0].host_ids[0]'))).toBe(true);
    const both = await rawCall(scorer.address, SCORE_HOSTS_BATCH, grpcFrame(Buffer.concat([field(0x0a, VALID), field(0x0a, INVALID)])), { timeoutMs: 5_000 });
    expect(both.grpcStatus).toBe(0);
    expect(both.body.includes(Buffer.from('requests[1].host_ids[0]'))).toBe(true);
  });

  it('remembered host lists hold no more memory than ksm_scorer_score_table_bytes reports, within KSM_SCORER_SCORE_CACHE_MB', async () => {
    sim = await startSimulator({ hosts: 200, vms: 400, seed: 4 });
    // The default 64 MB: an eighth, 8 MB, for remembered host lists.
    scorer = await startScorer(sim, { KSM_SCORER_SCORE_CACHE_MB: '64' });
    const hosts = [...sim.inventory.hosts.keys()];
    const os = { type: 'rhel_9x64', version: '' };
    // Warm up: the table, the index, the client's and server's own buffers.
    for (let i = 0; i < 20; i++) await unary(scorer.client, 'ScoreHostsBatch', { requests: [{ os, host_ids: [hosts[0], hosts[1]] }] });
    const before = heldBytes();
    const beforeReported = await reportedBytes(scorer);
    // Many distinct short lists (two ids each), as any client may send: twice as many as the lists' share holds by its own count.
    for (let a = 0; a < 200; a++) {
      const requests = hosts.slice(0, 200).map((h) => ({ os, host_ids: [hosts[a], h] }));
      await unary(scorer.client, 'ScoreHostsBatch', { requests });
    }
    const growth = heldBytes() - before;
    const growthReported = (await reportedBytes(scorer)) - beforeReported;
    expect(growthReported).toBeGreaterThan(7 * 2 ** 20);
    // Generous: half as much again as is reported, and a megabyte of slack for the process's own noise.
    expect(growth).toBeLessThan(1.5 * growthReported + 2 ** 20);
  }, 60_000);

  it('score tables for many OS identities hold no more memory than ksm_scorer_score_table_bytes reports, within KSM_SCORER_SCORE_CACHE_MB', async () => {
    // Few hosts: each table is small, so what each costs beyond its entries shows.
    sim = await startSimulator({ hosts: 2, vms: 40, seed: 4 });
    // 16 MB: seven eighths, 14 MB, for tables.
    scorer = await startScorer(sim, { KSM_SCORER_SCORE_CACHE_MB: '16' });
    for (let i = 0; i < 20; i++) await unary(scorer.client, 'ScoreHostsBatch', { requests: [{ os: { type: 'rhel_9x64', version: '' } }] });
    const before = heldBytes();
    const beforeReported = await reportedBytes(scorer);
    // Distinct OS identities (any client may name any), more than the limit keeps by its own count.
    for (let b = 0; b < 80; b++) {
      const requests = Array.from({ length: 200 }, (_, i) => ({ os: { type: `os-${b}-${i}`, version: '' } }));
      await unary(scorer.client, 'ScoreHostsBatch', { requests });
    }
    const growth = heldBytes() - before;
    const growthReported = (await reportedBytes(scorer)) - beforeReported;
    expect(growthReported).toBeGreaterThan(12 * 2 ** 20);
    expect(growth).toBeLessThan(1.5 * growthReported + 2 ** 20);
  }, 60_000);
});
