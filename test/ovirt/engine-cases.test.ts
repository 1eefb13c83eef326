/**
 * Issue 19, engine cases not tried before: 500 answers with HTML bodies (an Apache or JBoss error
 * page in front of the engine), answers dripped just inside the per-read timeout, and clocks that
 * jump (this machine's wall clock forward and back: the token, the staleness of the inventory).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ScorerError } from '../../src/errors';
import { Freshness } from '../../src/inventory/freshness';
import type { InventorySnapshot } from '../../src/inventory/snapshot';
import { silentLogger } from '../../src/log';
import { EngineClient } from '../../src/ovirt/client';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { engineClient, startScorer, startSimulator, unary } from '../helpers';

const ERROR_PAGE = `<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1><p>The server encountered an internal error.</p>${'<p>stack frame</p>'.repeat(20_000)}</body></html>`;

/** A `respond` fault: every API request answered 500 with an HTML page (gzipped when asked for). */
const htmlError = (gzip: boolean) => (_path: string, _req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(500, { 'content-type': 'text/html; charset=iso-8859-1', ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
  res.end(gzip ? gzipSync(ERROR_PAGE) : ERROR_PAGE);
  return true;
};

/** A `respond` fault: `body` sent a piece every `everyMs` (headers at once), each gap inside the client's per-read timeout. */
const dripped = (body: string, pieces: number, everyMs: number) => (_path: string, _req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  const size = Math.ceil(body.length / pieces);
  let at = 0;
  const next = () => {
    if (res.destroyed) return;
    res.write(body.slice(at, at + size));
    at += size;
    if (at >= body.length) res.end();
    else setTimeout(next, everyMs).unref();
  };
  setTimeout(next, everyMs).unref();
  return true;
};

describe('engine cases', () => {
  let sim: SimulatedEngine;
  beforeAll(async () => {
    sim = await startSimulator({ hosts: 4, vms: 30, seed: 19 });
  });
  afterEach(() => {
    sim.faults = {};
    vi.useRealTimers();
  });
  afterAll(async () => {
    await sim.stop();
  });

  for (const gzip of [false, true]) {
    it(`a 500 answer with an HTML page${gzip ? ', gzipped,' : ''} is an engine_unreachable error naming the status, with no HTML in it`, async () => {
      const client = engineClient(sim);
      try {
        sim.faults.respond = htmlError(gzip);
        const err = (await client.listHosts().catch((e: unknown) => e)) as ScorerError;
        expect(err).toBeInstanceOf(ScorerError);
        expect(err.code).toBe('engine_unreachable');
        expect(err.message).toBe('engine answered HTTP 500 to GET /hosts');
      } finally {
        await client.close();
      }
    });
  }

  it('the service keeps serving its inventory while every engine answer is a 500 HTML page', async () => {
    const scorer = await startScorer(sim);
    try {
      const before = await unary<object, { scores: unknown[] }>(scorer.client, 'ScoreHosts', { os: { type: 'rhel_8x64', version: '' } });
      sim.faults.respond = htmlError(false);
      await expect(scorer.service.inventory.refresh()).rejects.toThrow(/HTTP 500/);
      const after = await unary<object, { scores: unknown[] }>(scorer.client, 'ScoreHosts', { os: { type: 'rhel_8x64', version: '' } });
      expect(after.scores).toEqual(before.scores);
    } finally {
      await scorer.close();
    }
  });

  describe('an answer dripped with each gap inside OVIRT_TIMEOUT_SECONDS (0.3 s)', () => {
    const client = () =>
      new EngineClient({
        connection: { url: sim.url, username: sim.username, password: sim.password, caFile: undefined, insecure: false },
        pageSize: 500,
        requestTimeoutMs: 300,
        requestDeadlineMs: 1_000,
        maxVms: 1_000,
        maxAnswerBytes: 2 ** 20,
        logger: silentLogger,
      });

    it('that would end after OVIRT_REQUEST_DEADLINE_SECONDS (1 s) is cut at the deadline, with an error that says so', async () => {
      const c = client();
      try {
        await c.listHosts(); // logged in
        sim.faults.respond = dripped('{"host":[]}', 11, 200); // 2.2 s in all
        const t0 = performance.now();
        const err = (await c.listHosts().catch((e: unknown) => e)) as ScorerError;
        const ms = performance.now() - t0;
        expect(err.code).toBe('engine_unreachable');
        expect(err.message).toBe('engine did not finish answering GET /hosts within 1 s (OVIRT_REQUEST_DEADLINE_SECONDS)');
        expect(ms).toBeGreaterThanOrEqual(900);
        expect(ms).toBeLessThan(2_000);
      } finally {
        await c.close();
      }
    });

    it('that ends before the deadline is read', async () => {
      const c = client();
      try {
        sim.faults.respond = dripped('{"host":[]}', 3, 250); // 0.75 s
        expect(await c.listHosts()).toEqual([]);
      } finally {
        await c.close();
      }
    });
  });

  it("this machine's clock jumping a month forward, then back: the token is kept (it has no clock-based expiry here), no new login", async () => {
    const c = engineClient(sim);
    try {
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
      expect(await c.listHosts()).toHaveLength(4);
      vi.setSystemTime(Date.now() + 30 * 86_400_000);
      expect(await c.listHosts()).toHaveLength(4);
      vi.setSystemTime(Date.now() - 60 * 86_400_000);
      expect(await c.listHosts()).toHaveLength(4);
      const logins = sim.requests.filter((r) => r.path === '/sso/oauth/token').length;
      expect(await c.listHosts()).toHaveLength(4);
      expect(sim.requests.filter((r) => r.path === '/sso/oauth/token')).toHaveLength(logins);
    } finally {
      await c.close();
    }
  });

  // The inventory's age is measured on the wall clock (Date.now() - snapshot.refreshedAt,
  // src/inventory/freshness.ts), so a clock step (NTP, a VM resumed) moves it: forward by more than
  // KSM_SCORER_MAX_STALENESS_SECONDS, every call is refused UNAVAILABLE until the next sync; back,
  // an inventory the engine no longer refreshes is served as fresh for as long as the step.
  // Fix needed in src/inventory (not edited here: being rewritten): keep refreshedAt (wall clock)
  // for display only and measure age on a monotonic clock (performance.now() at publish; for
  // worker replicas, the primary sends the snapshot's age and the replica subtracts it from its
  // own performance.now()). Then remove the .skip.
  describe('the inventory age when the wall clock jumps (needs the fix above)', () => {
    const limits = { staleAfterMs: 60_000, maxStalenessMs: 300_000 };
    const snapshotNow = () => ({ refreshedAt: Date.now(), generation: 1, hostCount: 1, vmCount: 1 }) as unknown as InventorySnapshot;

    it.skip('an hour forward: a snapshot just refreshed is still served, fresh', () => {
      vi.useFakeTimers({ toFake: ['Date', 'performance'], now: Date.now() });
      const freshness = new Freshness(limits, silentLogger, Date.now);
      freshness.publish(snapshotNow());
      vi.setSystemTime(Date.now() + 3_600_000);
      expect(freshness.check()).toBe('fresh');
      expect(() => freshness.servable()).not.toThrow();
    });

    it.skip('an hour back: a snapshot not refreshed for longer than the maximum staleness is not served', () => {
      vi.useFakeTimers({ toFake: ['Date', 'performance'], now: Date.now() });
      const freshness = new Freshness(limits, silentLogger, Date.now);
      freshness.publish(snapshotNow());
      vi.setSystemTime(Date.now() - 3_600_000);
      vi.advanceTimersByTime(limits.maxStalenessMs + 1_000);
      expect(freshness.check()).toBe('expired');
      expect(() => freshness.servable()).toThrow(/maximum staleness/);
    });
  });
});
