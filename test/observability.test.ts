/**
 * What `ksm-scorer serve` writes, as operators run it: every line of a run
 * with failures is one JSON object (grpc-js's own lines: test/log.test.ts), an engine
 * that hangs is visible at once, and recognisable secrets (password, tokens,
 * a wrong password) appear in no log line and no metric, at debug level,
 * through logins, 401s, bad credentials and an engine outage.
 */
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatedEngine } from '../src/simulator/engine';
import { startSimulator } from './helpers';
import { killAll, type Proc, spawnProc, waitForLog } from './processes';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const serve = (env: Record<string, string>) =>
  spawnProc(process.execPath, [CLI, 'serve'], {
    KSM_SCORER_LISTEN: '127.0.0.1:0',
    KSM_SCORER_METRICS_LISTEN: '127.0.0.1:0',
    KSM_SCORER_LOG_LEVEL: 'debug',
    ...env,
  });
const FAST = {
  KSM_SCORER_EVENTS_SECONDS: '0.2',
  KSM_SCORER_BACKOFF_MAX_SECONDS: '1',
  OVIRT_TIMEOUT_SECONDS: '0.5',
  OVIRT_REQUEST_DEADLINE_SECONDS: '1',
};

/** Every line the process wrote, parsed; fails naming the first line that is not one JSON object. */
function jsonLines(p: Proc): Record<string, unknown>[] {
  expect(p.stdout).toBe('');
  const lines = p.stderr.split('\n');
  expect(lines.pop()).toBe(''); // ends with a newline
  return lines.map((line) => {
    try {
      const v = JSON.parse(line) as unknown;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
      return v as Record<string, unknown>;
    } catch {
      throw new Error(`not a JSON object line: ${line}`);
    }
  });
}

const count = (p: Proc, msg: string) => p.stderr.split('\n').filter((l) => l.includes(`"msg":"${msg}`)).length;
async function waitForCount(p: Proc, msg: string, n: number, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (count(p, msg) < n) {
    if (Date.now() > end) throw new Error(`fewer than ${n} lines "${msg}" in:\n${p.stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stop(p: Proc): Promise<number | null> {
  p.child.kill('SIGTERM');
  return p.exited;
}

async function freePortThatRefuses(): Promise<number> {
  const server = createServer();
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('serve output', () => {
  let sim: SimulatedEngine | undefined;
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `make test` (it builds first)');
  });
  afterEach(async () => {
    await killAll();
    await sim?.stop();
    sim = undefined;
  });

  it('a dead engine URL: the first request logged when sent and when it fails, every line JSON', async () => {
    const port = await freePortThatRefuses();
    const p = serve({
      ...FAST,
      OVIRT_URL: `http://127.0.0.1:${port}/ovirt-engine/api`,
      OVIRT_USERNAME: 'admin@internal',
      OVIRT_PASSWORD: 'x',
    });
    await waitForLog(p, /"msg":"engine sync failed again"/);
    expect(await stop(p)).toBe(0);
    const lines = jsonLines(p);
    const sent = lines.findIndex((l) => l.msg === 'first engine request sent');
    const failed = lines.findIndex((l) => l.msg === 'first engine request failed');
    expect(sent).toBeGreaterThan(-1);
    expect(failed).toBeGreaterThan(sent);
    expect(lines[sent]).toMatchObject({ level: 'info', endpoint: 'POST /sso/oauth/token', engine: `http://127.0.0.1:${port}` });
    expect(lines[failed]).toMatchObject({
      level: 'warn',
      endpoint: 'POST /sso/oauth/token',
      result: 'error',
      err: { code: 'ECONNREFUSED' },
    });
    expect(lines.filter((l) => l.msg === 'first engine request failed')).toHaveLength(1);
    expect(lines.at(-1)).toMatchObject({ msg: 'stopped' });
  });

  it('an engine that hangs: the first request is reported timed out at its deadline, not after silence', async () => {
    sim = await startSimulator();
    sim.faults.hangLogin = true;
    const p = serve({ ...FAST, OVIRT_URL: sim.url, OVIRT_USERNAME: sim.username, OVIRT_PASSWORD: sim.password });
    await waitForLog(p, /"msg":"first engine request timed out"/);
    expect(await stop(p)).toBe(0);
    const lines = jsonLines(p);
    const timedOut = lines.find((l) => l.msg === 'first engine request timed out')!;
    expect(timedOut).toMatchObject({ level: 'warn', endpoint: 'POST /sso/oauth/token', result: 'timeout' });
    expect(Number(timedOut.ms)).toBeGreaterThanOrEqual(900);
  });

  it('a taken gRPC port: the refusal is a JSON line naming the setting, exit 2', async () => {
    const taken = createServer();
    const port = await new Promise<number>((resolve) =>
      taken.listen(0, '127.0.0.1', () => resolve((taken.address() as { port: number }).port)),
    );
    try {
      const p = serve({ KSM_SCORER_LISTEN: `127.0.0.1:${port}` });
      expect(await p.exited).toBe(2);
      expect(jsonLines(p).at(-1)).toMatchObject({
        level: 'error',
        problems: [expect.stringMatching(/^KSM_SCORER_LISTEN: 127\.0\.0\.1:\d+ is already in use/)],
      });
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('bad configuration is one JSON line too', async () => {
    const p = serve({ KSM_SCORER_METRICS_LISTEN: 'everywhere' });
    expect(await p.exited).toBe(2);
    expect(jsonLines(p)).toEqual([
      expect.objectContaining({ level: 'error', problems: [expect.stringMatching(/^KSM_SCORER_METRICS_LISTEN: must be HOST:PORT/)] }),
    ]);
  });

  it('no password or token in any log line or metric: logins, 401s, bad credentials, an outage, at debug', async () => {
    const password = 'PW-3b7e-recognisable';
    let issued = 0;
    sim = await startSimulator({ password });
    sim.faults.badToken = () => `TOK-9f1c-recognisable-${issued++}`; // good tokens, but recognisable ones
    const p = serve({ ...FAST, OVIRT_URL: sim.url, OVIRT_USERNAME: sim.username, OVIRT_PASSWORD: password });
    const metricsUrl = String(JSON.parse((await waitForLog(p, /\{[^\n]*"msg":"ksm-scorer listening"\}/))[0]).metrics);
    await waitForLog(p, /"msg":"inventory refreshed"/);

    sim.expireTokens(); // 401 on the next poll: logs in again
    await waitForCount(p, 'logged in to the engine', 2);
    sim.faults.unauthorized = true; // a 401 storm, fresh tokens refused too
    await waitForLog(p, /"code":"engine_auth"[^\n]*"msg":"engine sync failed/);
    sim.faults.unauthorized = false;
    await waitForCount(p, 'engine sync recovered', 1);
    const againBefore = count(p, 'engine sync failed again');
    sim.password = 'changed-on-the-engine'; // bad credentials from now on
    sim.expireTokens();
    await waitForCount(p, 'engine sync failed again', againBefore + 1);
    expect(p.stderr).toMatch(/engine refused the login of admin@internal/);
    sim.password = password;
    await waitForCount(p, 'engine sync recovered', 2);
    sim.faults.status = 503; // an outage
    await waitForCount(p, 'engine sync failed; serving the last good inventory and retrying with backoff', 3);
    sim.faults.status = undefined;
    await waitForCount(p, 'engine sync recovered', 3);
    const metrics = await (await fetch(metricsUrl)).text();
    expect(await stop(p)).toBe(0);

    expect(issued).toBeGreaterThanOrEqual(3);
    jsonLines(p);
    for (const where of [p.stderr, metrics]) {
      expect(where).not.toContain(password);
      expect(where).not.toContain('TOK-9f1c');
      expect(where).not.toContain('recognisable');
    }
    expect(metrics).toMatch(/ksm_scorer_engine_requests_total\{endpoint="GET \/events",status_class="4xx"\} [1-9]/);
    expect(metrics).toMatch(/ksm_scorer_engine_requests_total\{endpoint="POST \/sso\/oauth\/token",status_class="4xx"\} [1-9]/);

    // A wrong password, refused by the engine: not in the output either.
    const wrong = 'WRONG-PW-55aa-recognisable';
    const q = serve({ ...FAST, OVIRT_URL: sim.url, OVIRT_USERNAME: sim.username, OVIRT_PASSWORD: wrong });
    await waitForLog(q, /"msg":"engine sync failed again"/);
    expect(await stop(q)).toBe(0);
    jsonLines(q);
    expect(q.stderr).toMatch(/engine refused the login of admin@internal/);
    expect(q.stderr).not.toContain(wrong);
  });
});
