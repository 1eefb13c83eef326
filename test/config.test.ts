import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig } from '../src/config';

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
};

describe('loadConfig', () => {
  it('defaults to the embedded simulator on 0.0.0.0:50051', () => {
    const c = loadConfig({});
    expect(c.engine).toBeUndefined();
    expect(c).toMatchObject({ listen: '0.0.0.0:50051', refreshIntervalMs: 300_000, eventsIntervalMs: 5_000, maxStalenessMs: 600_000, maxHostsPerRequest: 10_000, pageSize: 500 });
    expect(c.staleAfterMs).toBeUndefined();
    expect(Object.isFrozen(c) && Object.isFrozen(c.simulator)).toBe(true);
  });

  it('reads a real engine configuration', () => {
    const c = loadConfig({
      OVIRT_URL: 'https://engine.example.com/ovirt-engine/api/',
      OVIRT_USERNAME: 'admin@internal',
      OVIRT_PASSWORD: 's3cret',
      KSM_SCORER_LISTEN: '127.0.0.1:6000',
      KSM_SCORER_REFRESH_SECONDS: '5',
      KSM_SCORER_MAX_HOSTS: '64',
    });
    expect(c.engine).toEqual({ url: 'https://engine.example.com/ovirt-engine/api', username: 'admin@internal', password: 's3cret', caFile: undefined, insecure: false });
    expect(c).toMatchObject({ listen: '127.0.0.1:6000', refreshIntervalMs: 5_000, maxHostsPerRequest: 64 });
  });

  it('reads the password from OVIRT_PASSWORD_FILE, without its trailing newline', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ksm-'));
    writeFileSync(join(dir, 'pw'), 'from-file\n');
    const c = loadConfig({ OVIRT_URL: 'https://e/ovirt-engine/api', OVIRT_USERNAME: 'u', OVIRT_PASSWORD_FILE: join(dir, 'pw') });
    expect(c.engine?.password).toBe('from-file');
  });

  it('reports every problem at once, each naming its variable', () => {
    const problems = problemsOf({
      OVIRT_URL: 'ftp://engine/x',
      KSM_SCORER_LISTEN: 'nope',
      KSM_SCORER_REFRESH_SECONDS: 'soon',
      KSM_SCORER_MAX_HOSTS: '-1',
      OVIRT_INSECURE: 'maybe',
      OVIRT_CA_FILE: '/does/not/exist.pem',
    });
    const vars = problems.map((p) => p.split(':')[0]);
    expect(vars).toEqual(expect.arrayContaining([
      'OVIRT_URL', 'KSM_SCORER_LISTEN', 'KSM_SCORER_REFRESH_SECONDS', 'KSM_SCORER_MAX_HOSTS',
      'OVIRT_INSECURE', 'OVIRT_CA_FILE', 'OVIRT_USERNAME', 'OVIRT_PASSWORD',
    ]));
  });

  it('rejects credentials inside OVIRT_URL and never echoes them', () => {
    const problems = problemsOf({ OVIRT_URL: 'https://admin:hunter2@e/ovirt-engine/api', OVIRT_USERNAME: 'u', OVIRT_PASSWORD: 'p' });
    expect(problems).toEqual(['OVIRT_URL: must not contain credentials, use OVIRT_USERNAME and OVIRT_PASSWORD']);
  });

  it('refuses both OVIRT_PASSWORD and OVIRT_PASSWORD_FILE, and insecure with a CA file', () => {
    const problems = problemsOf({ OVIRT_URL: 'https://e/ovirt-engine/api', OVIRT_USERNAME: 'u', OVIRT_PASSWORD: 'p', OVIRT_PASSWORD_FILE: '/x', OVIRT_INSECURE: 'true', OVIRT_CA_FILE: '/etc/hostname' });
    expect(problems.some((p) => p.startsWith('OVIRT_PASSWORD_FILE: set either'))).toBe(true);
    expect(problems.some((p) => p.startsWith('OVIRT_INSECURE:'))).toBe(true);
  });

  it('describeConfig leaves the password out', () => {
    const c = loadConfig({ OVIRT_URL: 'https://e/ovirt-engine/api', OVIRT_USERNAME: 'u', OVIRT_PASSWORD: 'top-secret' });
    expect(JSON.stringify(describeConfig(c))).not.toContain('top-secret');
  });
});
