/** The built `ksm-scorer` bin as an operator runs it: real processes, real signals. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatedEngine } from '../src/simulator/engine';
import { startSimulator } from './helpers';

const CLI = join(__dirname, '..', 'dist', 'cli.js');

interface Proc {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

const running: Proc[] = [];

function run(args: string[], env: Record<string, string> = {}): Proc {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OVIRT_') && !k.startsWith('KSM_SCORER_')));
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc: Proc = { child, stdout: '', stderr: '', exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
  child.stdout!.on('data', (d: Buffer) => (proc.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (proc.stderr += d.toString()));
  running.push(proc);
  return proc;
}

async function waitForLog(proc: Proc, pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = proc.stderr.match(pattern);
    if (m) return m;
    if (Date.now() > end) throw new Error(`no log line matching ${pattern} in:\n${proc.stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('ksm-scorer CLI', () => {
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `make test` (it builds first)');
  });
  afterEach(async () => {
    for (const p of running.splice(0)) {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }
  });

  it('serve stops at start-up on bad configuration: one line naming the variables, exit code 2', async () => {
    const p = run(['serve'], { KSM_SCORER_REFRESH_SECONDS: 'often', KSM_SCORER_LISTEN: 'everywhere' });
    expect(await p.exited).toBe(2);
    const lines = p.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ksm-scorer: invalid configuration: .*KSM_SCORER_LISTEN: .*KSM_SCORER_REFRESH_SECONDS: must be a number/);
  });

  it('serve runs on the embedded simulator, score prints a table, SIGTERM stops it cleanly', async () => {
    const server = run(['serve'], { KSM_SCORER_LISTEN: '127.0.0.1:0', KSM_SCORER_SIM_HOSTS: '12', KSM_SCORER_SIM_VMS: '400' });
    await waitForLog(server, /embedded SIMULATED oVirt engine/);
    const port = (await waitForLog(server, /"msg":"ksm-scorer listening","address":"127\.0\.0\.1:(\d+)"/))[1]!;
    await waitForLog(server, /"msg":"inventory refreshed"/);

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
