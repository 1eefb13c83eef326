/**
 * `ksm-scorer engine status` and `engine record` as an operator runs them:
 * the built bin against `serve` on the embedded simulator (which serves a
 * configured example), and a recording made by the bin, served back by a
 * second `serve` with OVIRT_URL=file:DIR.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAll, spawnProc, waitForLog } from '../processes';

const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');
const run = (args: string[], env: Record<string, string> = {}) => spawnProc(process.execPath, [CLI, ...args], env);

async function serve(env: Record<string, string>): Promise<string> {
  const server = run(['serve'], {
    KSM_SCORER_LISTEN: '127.0.0.1:0',
    KSM_SCORER_OVIRT_PROXY_LISTEN: '127.0.0.1:0',
    KSM_SCORER_SIM_HOSTS: '45',
    KSM_SCORER_SIM_VMS: '200',
    ...env,
  });
  const port = (await waitForLog(server, /"address":"127\.0\.0\.1:(\d+)".*"msg":"ksm-scorer listening"/))[1]!;
  await waitForLog(server, /"msg":"the engine's view of ksm-scorer"/);
  return port;
}

describe('ksm-scorer engine', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ksm-engine-cli-'));
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `make test` (it builds first)');
  });
  afterEach(killAll);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('engine status prints the state, what to do next, the clusters and the calls; --json the answer', async () => {
    const port = await serve({});
    const p = run(['engine', 'status', '--target', `127.0.0.1:${port}`]);
    expect(await p.exited).toBe(0);
    expect(p.stdout).toMatch(
      /^state: not_called\n- policy ksm_same_os weighs the unit at factor 2, cluster Default uses it; clusters cluster-2, cluster-3 use policy none, which does not\n- no call from the engine in the last hour/,
    );
    expect(p.stdout).toMatch(
      /unit discovered, enabled\ncluster +scheduling policy +weighs unit\nDefault +ksm_same_os +yes\ncluster-2 +none +no\n/,
    );
    expect(p.stdout).toMatch(/XML-RPC listener: on; last call: never\n$/);
    const j = run(['engine', 'status', '--json', '--target', `127.0.0.1:${port}`]);
    expect(await j.exited).toBe(0);
    expect((JSON.parse(j.stdout) as { state: string }).state).toBe('ENGINE_USE_STATE_NOT_CALLED');
  }, 30_000);

  it('engine record DIR (the embedded simulator: OVIRT_URL unset) writes a recording that serve reads with OVIRT_URL=file:DIR', async () => {
    const rec = join(dir, 'rec');
    const p = run(['engine', 'record', rec, '--anonymize'], {
      KSM_SCORER_SIM_HOSTS: '45',
      KSM_SCORER_SIM_VMS: '200',
      OVIRT_PAGE_SIZE: '50',
    });
    expect(await p.exited).toBe(0);
    expect(p.stdout).toBe(`recorded 13 answers into ${rec} (anonymized); serve from it with OVIRT_URL=file:${rec}\n`);
    const index = JSON.parse(readFileSync(join(rec, 'recording.json'), 'utf8')) as { answers: { path: string }[] };
    expect(index.answers.filter((a) => a.path === '/vms')).toHaveLength(5);
    const port = await serve({ OVIRT_URL: `file:${rec}` });
    const s = run(['engine', 'status', '--target', `127.0.0.1:${port}`]);
    expect(await s.exited).toBe(0);
    // Anonymized: the cluster names are the recording's.
    expect(s.stdout).toMatch(
      /^state: not_called\n- policy ksm_same_os weighs the unit at factor 2, cluster cluster-01 uses it; clusters cluster-02, cluster-03 use policy none, which does not/,
    );
    const hosts = run(['hosts', '--target', `127.0.0.1:${port}`]);
    expect(await hosts.exited).toBe(0);
    expect(hosts.stdout).toMatch(/host-0045 /);
    expect(hosts.stdout).not.toMatch(/example\.com/);
  }, 30_000);

  it('usage errors are one line, exit 2: no subcommand, an unknown one, record without DIR; into a non-empty directory exits 1', async () => {
    for (const [args, message] of [
      [['engine'], /missing subcommand: status or record/],
      [['engine', 'start'], /unknown subcommand "start"/],
      [['engine', 'record'], /missing DIR/],
    ] as const) {
      const p = run([...args]);
      expect(await p.exited, args.join(' ')).toBe(2);
      // One line: the problem and where the usage is (the convention of every command).
      expect(p.stderr).toMatch(message);
      expect(p.stderr).toMatch(/\(see ksm-scorer engine --help\)\n$/);
      expect(p.stderr.split('\n')).toHaveLength(2);
    }
    const p = run(['engine', 'record', dir], { KSM_SCORER_SIM_HOSTS: '2', KSM_SCORER_SIM_VMS: '2' });
    expect(await p.exited).toBe(1);
    expect(p.stderr).toMatch(/is not empty: record into a new directory/);
  }, 30_000);
});
