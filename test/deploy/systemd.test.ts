/**
 * deploy/systemd: the unit runs the installed bin directly with the settings
 * the service reads, and `systemd-analyze verify` accepts it (skipped, with the
 * reason printed, where systemd-analyze is not installed).
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load';
import { configEnvNames, loadDeployedConfig } from './config-env';

const exec = promisify(execFile);
const DIR = join(__dirname, '..', '..', 'deploy', 'systemd');
const UNIT_TEXT = readFileSync(join(DIR, 'ksm-scorer.service'), 'utf8');

/** section -> key -> values (a key may repeat), from systemd's INI syntax (no line continuations in our files). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (current === undefined || eq < 1) throw new Error(`not a unit file line: ${line}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

/** KEY=VALUE lines of an EnvironmentFile (comments and blank lines skipped). */
function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new Error(`not a KEY=VALUE line: ${line}`);
    env[m[1]!] = m[2]!;
  }
  return env;
}

const service = parseUnit(UNIT_TEXT).get('Service')!;
const one = (key: string): string => {
  const values = service.get(key) ?? [];
  expect(values, key).toHaveLength(1);
  return values[0]!;
};

function systemdAnalyze(): string | undefined {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return 'systemd-analyze';
  } catch {
    return undefined;
  }
}
const SYSTEMD_ANALYZE = systemdAnalyze();
if (SYSTEMD_ANALYZE === undefined) {
  console.warn('SKIPPED systemd-analyze verify of deploy/systemd/ksm-scorer.service: systemd-analyze is not installed (test/install-deps.sh could not install Debian\'s systemd)');
}

describe('deploy/systemd', () => {
  it('runs the installed bin directly, as its own user, restarting on failure but not on a configuration error', () => {
    const argv = one('ExecStart').split(/\s+/);
    expect(argv[0]).toMatch(/^\/.*\/ksm-scorer$/);
    expect(argv.slice(1)).toEqual(['serve']);
    expect(one('User')).toBe('ksm-scorer');
    expect(one('Restart')).toBe('on-failure');
    // The CLI's exit code for a configuration error (test/cli.test.ts).
    expect(one('RestartPreventExitStatus')).toBe('2');
    // Long enough for the service's own drain after SIGTERM.
    expect(Number.parseInt(one('TimeoutStopSec'), 10) * 1000).toBeGreaterThan(loadConfig({}).server.shutdownGraceMs);
  });

  it('tells systemd when it is ready (Type=notify through systemd-notify, a child: NotifyAccess=all), so a bad configuration fails `systemctl start`', () => {
    expect(one('Type')).toBe('notify');
    expect(one('NotifyAccess')).toBe('all');
    // The journal reads each line's <N> priority prefix (test/deploy/systemd-service.test.ts).
    expect(one('SyslogLevelPrefix')).toBe('yes');
  });

  it('a failure that keeps coming ends in a failed unit: the start limit is reached at RestartSec, not retried forever', () => {
    const unit = parseUnit(UNIT_TEXT).get('Unit')!;
    const seconds = (v: string) => {
      const m = /^(\d+)s?$/.exec(v);
      if (m === null) throw new Error(`not a number of seconds: ${v}`);
      return Number(m[1]);
    };
    const burst = Number(unit.get('StartLimitBurst')?.[0]);
    const interval = seconds(unit.get('StartLimitIntervalSec')?.[0] ?? '');
    // `burst` starts, RestartSec apart (each start failing at once), fit in the interval: the limit is reached.
    expect(burst).toBeGreaterThan(1);
    expect(burst * seconds(one('RestartSec'))).toBeLessThan(interval);
  });

  it('the simulator drop-in empties the unit\'s environment file, credential and OVIRT_PASSWORD_FILE, so serve accepts the configuration on the simulator', () => {
    const dropIn = parseUnit(readFileSync(join(DIR, 'ksm-scorer-simulator.conf'), 'utf8')).get('Service')!;
    // systemd: an empty assignment resets the list set so far.
    const merged = (key: string) => [...(service.get(key) ?? []), ...(dropIn.get(key) ?? [])].reduce<string[]>((list, v) => (v === '' ? [] : [...list, v]), []);
    expect(merged('EnvironmentFile')).toEqual([]);
    expect(merged('LoadCredential')).toEqual([]);
    const envOf = (assignments: string[]) => Object.fromEntries(assignments.flatMap((a) => a.split(/\s+/)).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    // Without the drop-in and without OVIRT_URL, the unit's OVIRT_PASSWORD_FILE is refused (why the drop-in exists).
    expect(() => loadConfig(envOf(service.get('Environment') ?? []))).toThrow(/OVIRT_URL: unset, so the embedded simulator would be used and OVIRT_PASSWORD_FILE ignored/);
    expect(loadConfig(envOf(merged('Environment'))).engine.connection).toBeUndefined();
  });

  it('is sandboxed, and leaves V8 its writable executable memory', () => {
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(service.has('MemoryDenyWriteExecute')).toBe(false);
  });

  it('requires its EnvironmentFile and gets the password as a credential through OVIRT_PASSWORD_FILE', () => {
    // No leading "-": a missing file must stop the start, not run on the embedded simulator.
    expect(one('EnvironmentFile')).toBe('/etc/ksm-scorer/ksm-scorer.env');
    const [credential] = one('LoadCredential').split(':');
    expect(service.get('Environment')).toEqual([`OVIRT_PASSWORD_FILE=%d/${credential}`]);
  });

  it('the example EnvironmentFile sets only what the service reads, with values it accepts', () => {
    const env = parseEnvFile(readFileSync(join(DIR, 'ksm-scorer.env'), 'utf8'));
    const known = configEnvNames();
    expect(Object.keys(env).filter((name) => !known.has(name))).toEqual([]);
    expect(env).not.toHaveProperty('OVIRT_PASSWORD');
    const config = loadDeployedConfig({ ...env, OVIRT_PASSWORD_FILE: 'from the unit' });
    expect(config.engine.connection?.url).toBe(env.OVIRT_URL);
  });

  describe.skipIf(SYSTEMD_ANALYZE === undefined)('systemd-analyze', () => {
    let dir: string;
    beforeAll(() => void (dir = mkdtempSync(join(tmpdir(), 'ksm-systemd-'))));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    // verify checks that ExecStart's binary exists, and ksm-scorer is not installed here:
    // it checks a copy whose ExecStart names an executable in a temporary directory.
    const copy = (): string => {
      const bin = join(dir, 'ksm-scorer');
      writeFileSync(bin, '#!/bin/sh\n');
      chmodSync(bin, 0o755);
      const unit = join(dir, 'ksm-scorer.service');
      writeFileSync(unit, UNIT_TEXT.replace(/^ExecStart=\S+/m, `ExecStart=${bin}`));
      return unit;
    };

    it('verify accepts the unit without a warning, alone and with the simulator drop-in', async () => {
      const { stdout, stderr } = await exec(SYSTEMD_ANALYZE!, ['verify', '--man=no', copy()], { timeout: 30_000 });
      expect(`${stdout}${stderr}`).toBe('');
      // verify reads drop-ins from UNIT.d/ beside the unit file, as systemd does from /etc/systemd/system.
      mkdirSync(join(dir, 'ksm-scorer.service.d'), { recursive: true });
      copyFileSync(join(DIR, 'ksm-scorer-simulator.conf'), join(dir, 'ksm-scorer.service.d', 'simulator.conf'));
      try {
        const withDropIn = await exec(SYSTEMD_ANALYZE!, ['verify', '--man=no', copy()], { timeout: 30_000 });
        expect(`${withDropIn.stdout}${withDropIn.stderr}`).toBe('');
      } finally {
        rmSync(join(dir, 'ksm-scorer.service.d'), { recursive: true, force: true });
      }
    });

    it('security rates the sandbox OK (exposure 2.0 or lower)', async () => {
      const { stdout } = await exec(SYSTEMD_ANALYZE!, ['security', '--offline=true', '--no-pager', copy()], { timeout: 30_000 });
      const exposure = /Overall exposure level for ksm-scorer\.service: (\d+\.\d+)/.exec(stdout);
      expect(Number(exposure?.[1])).toBeLessThanOrEqual(2);
    });
  });
});
