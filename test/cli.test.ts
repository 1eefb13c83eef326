/** The built `ksm-scorer` bin as an operator runs it: real processes, real signals. */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatedEngine } from '../src/simulator/engine';
import { startSimulator } from './helpers';
import { killAll, serveOnSimulator, spawnProc, waitForLog } from './processes';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const run = (args: string[], env: Record<string, string> = {}) => spawnProc(process.execPath, [CLI, ...args], env);

describe('ksm-scorer CLI', () => {
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `make test` (it builds first)');
  });
  afterEach(killAll);

  it('serve stops at start-up on bad configuration: one line naming the variables, exit code 2', async () => {
    const p = run(['serve'], { KSM_SCORER_REFRESH_SECONDS: 'often', KSM_SCORER_LISTEN: 'everywhere' });
    expect(await p.exited).toBe(2);
    const lines = p.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ksm-scorer: invalid configuration: .*KSM_SCORER_LISTEN: .*KSM_SCORER_REFRESH_SECONDS: must be a number/);
  });

  it('--version prints the package version; --help and COMMAND --help print usage on stdout, exit 0', async () => {
    const version = run(['--version']);
    expect(await version.exited).toBe(0);
    expect(version.stdout).toBe(`${(JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version}\n`);

    const help = run(['--help']);
    expect(await help.exited).toBe(0);
    expect(help.stdout).toMatch(/^usage:\n {2}ksm-scorer serve\n[^]* {2}ksm-scorer score [^]* {2}ksm-scorer --version \| --help\n/);
    for (const command of ['serve', 'score']) {
      const p = run([command, '--help']);
      expect(await p.exited).toBe(0);
      expect(p.stdout).toMatch(new RegExp(`^usage:\\n {2}ksm-scorer ${command}`));
      expect(p.stdout).not.toMatch(command === 'serve' ? /ksm-scorer score/ : /ksm-scorer serve/);
    }
  });

  it('unknown options, stray arguments and a missing command are usage errors: exit 2, usage on stderr, nothing started', async () => {
    for (const [args, message] of [
      [['--verbose'], 'ksm-scorer: unknown option "--verbose"'],
      [[], 'ksm-scorer: missing command'],
      [['start'], 'ksm-scorer: unknown command "start"'],
      [['serve', '--port', '1'], "ksm-scorer serve: Unknown option '--port'"],
      [['serve', 'now'], "ksm-scorer serve: Unexpected argument 'now'"],
      [['score', '--os-type', 'rhel_8x64', '--colour'], "ksm-scorer score: Unknown option '--colour'"],
    ] as const) {
      const p = run([...args]);
      expect(await p.exited, args.join(' ')).toBe(2);
      expect(p.stderr.startsWith(message), p.stderr).toBe(true);
      expect(p.stderr).toContain('usage:\n');
      expect(p.stdout).toBe('');
    }
  });

  it('serve runs on the embedded simulator, score prints a table, SIGTERM stops it cleanly', async () => {
    const { server, port } = await serveOnSimulator(run, 12, 400);

    const table = run(['score', '--target', `127.0.0.1:${port}`, '--os-type', 'rhel_8x64', '--os-version', 'Red Hat Enterprise Linux 8.6', '--top', '5']);
    expect(await table.exited).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('Hosts for OS rhel_8x64 "Red Hat Enterprise Linux 8.6"  (score 0..100, higher = more same-OS VMs)');
    expect(lines[1]).toMatch(/^HOST\s+SCORE\s+VMS\s+SAME TYPE\s+SAME VERSION$/);
    expect(lines.slice(2, 7).every((l) => /^[0-9a-f-]{36}\s+\d+\.\d\d\s+\d+\s+\d+\s+\d+$/.test(l))).toBe(true);
    expect(lines.at(-2)).toBe('... 7 more hosts (use --top)');
    expect(lines.at(-1)).toMatch(/^inventory: generation 1, 12 hosts, 400 VMs, refreshed /);

    const missing = run(['score', '--target', `127.0.0.1:${port}`, '--vm-id', '00000000-0000-4000-8000-000000000001']);
    expect(await missing.exited).toBe(1);
    expect(missing.stderr).toMatch(/NOT_FOUND: vm_id: the oVirt engine has no VM/);

    const usage = run(['score', '--target', `127.0.0.1:${port}`]);
    expect(await usage.exited).toBe(2);

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.stderr).toMatch(/"msg":"stopped"/);
  });

  it('a listen port already in use: one line naming KSM_SCORER_LISTEN, exit 2, before the simulator starts', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const address = `127.0.0.1:${(taken.address() as AddressInfo).port}`;
      const p = run(['serve'], { KSM_SCORER_LISTEN: address });
      expect(await p.exited).toBe(2);
      const lines = p.stderr.trimEnd().split('\n');
      expect(lines.at(-1)).toBe(`ksm-scorer: invalid configuration: KSM_SCORER_LISTEN: ${address} is already in use by another process (pick another port, or stop that process)`);
      // every other line is the JSON log, and none of it says the simulator started
      for (const line of lines.slice(0, -1)) expect(() => JSON.parse(line), line).not.toThrow();
      expect(p.stderr).not.toMatch(/SIMULATED/);
    } finally {
      taken.close();
    }
  });

  it('--os-version with --vm-id is a usage error (the VM has its own OS); the help says what omitting --os-version means', async () => {
    const p = run(['score', '--vm-id', '00000000-0000-4000-8000-000000000001', '--os-version', '8.6']);
    expect(await p.exited).toBe(2);
    expect(p.stderr).toMatch(/^ksm-scorer score: --os-version goes with --os-type; a VM given by --vm-id is scored as the OS it has\n/);
    const help = run(['score', '--help']);
    expect(await help.exited).toBe(0);
    expect(help.stdout).toMatch(/without --os-version, the version is "", which matches VMs whose version is unknown/);
  });

  it('npm start before a build says what to run instead of a MODULE_NOT_FOUND stack', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ksm-unbuilt-'));
    try {
      cpSync(join(__dirname, '..', 'package.json'), join(dir, 'package.json'));
      const p = spawnProc('npm', ['start', '--silent'], { npm_config_update_notifier: 'false' }, dir);
      expect(await p.exited).not.toBe(0);
      expect(p.stderr).toContain('ksm-scorer is not built: run `make run` (or `make build`, then `npm start`)');
      expect(p.stderr).not.toMatch(/MODULE_NOT_FOUND|at Module/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with the engine refusing connections, the log names the engine URL and the client is pointed to the log', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/ovirt-engine/api`;
    await new Promise((resolve) => closed.close(resolve));
    const server = run(['serve'], { OVIRT_URL: url, OVIRT_USERNAME: 'admin@internal', OVIRT_PASSWORD: 'x', KSM_SCORER_LISTEN: '127.0.0.1:0' });
    const port = (await waitForLog(server, /"msg":"ksm-scorer listening","address":"127\.0\.0\.1:(\d+)"/))[1]!;
    const [line] = await waitForLog(server, /.*"msg":"engine sync failed.*/);
    expect(line).toMatch(/"msg":"engine sync failed: no inventory has loaded yet; retrying with backoff"/);
    expect(line).toContain(`the oVirt engine at ${url} could not be reached`);
    expect(server.stderr).not.toMatch(/last good inventory/);

    const score = run(['score', '--target', `127.0.0.1:${port}`, '--os-type', 'other']);
    expect(await score.exited).toBe(1);
    expect(score.stderr).toBe('ksm-scorer score: UNAVAILABLE: no inventory has loaded yet: the oVirt engine could not be read (the service log says why); try again later\n');
  });

  describe('against a real engine URL', () => {
    let sim: SimulatedEngine;
    afterEach(async () => sim.stop());

    it('never writes the password to its logs, even when the login fails', async () => {
      sim = await startSimulator();
      const secret = 'Sup3r-Secret-Passw0rd';
      const p = run(['serve'], {
        OVIRT_URL: sim.url,
        OVIRT_USERNAME: sim.username,
        OVIRT_PASSWORD: secret,
        KSM_SCORER_LISTEN: '127.0.0.1:0',
        KSM_SCORER_LOG_LEVEL: 'debug',
      });
      await waitForLog(p, /"msg":"engine sync failed[^"]*".*"code":"engine_auth"/);
      p.child.kill('SIGTERM');
      await p.exited;
      expect(p.stderr).toMatch(/"password":"<redacted>"/);
      expect(p.stderr).not.toContain(secret);
    });
  });
});
