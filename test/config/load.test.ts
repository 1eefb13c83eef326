import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig } from '../../src/config/load';
import { killAll, spawnProc } from '../processes';

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
    expect(c.engine.connection).toBeUndefined();
    expect(c).toMatchObject({
      server: { listen: { host: '0.0.0.0', port: 50051 } },
      inventory: { refreshIntervalMs: 300_000, eventsIntervalMs: 5_000, maxStalenessMs: 600_000 },
      limits: { maxHostsPerRequest: 10_000 },
      engine: { pageSize: 500 },
    });
    // 2 x the 5 s events interval
    expect(c.inventory.staleAfterMs).toBe(10_000);
    expect(Object.isFrozen(c) && Object.isFrozen(c.simulator)).toBe(true);
  });

  it('reads a real engine configuration', () => {
    const c = loadConfig({
      OVIRT_URL: 'https://engine.example.com/ovirt-engine/api/',
      OVIRT_USERNAME: 'admin@internal',
      OVIRT_PASSWORD: 's3cret',
      KSM_SCORER_LISTEN: '127.0.0.1:6000',
      KSM_SCORER_REFRESH_SECONDS: '50',
      KSM_SCORER_MAX_HOSTS: '64',
    });
    expect(c.engine.connection).toEqual({
      url: 'https://engine.example.com/ovirt-engine/api',
      username: 'admin@internal',
      password: 's3cret',
      caFile: undefined,
      insecure: false,
    });
    expect(c).toMatchObject({
      server: { listen: { host: '127.0.0.1', port: 6000 } },
      inventory: { refreshIntervalMs: 50_000 },
      limits: { maxHostsPerRequest: 64 },
    });
  });

  it('reads the password from OVIRT_PASSWORD_FILE, without its trailing newline', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ksm-'));
    writeFileSync(join(dir, 'pw'), 'from-file\n');
    const c = loadConfig({ OVIRT_URL: 'https://e/ovirt-engine/api', OVIRT_USERNAME: 'u', OVIRT_PASSWORD_FILE: join(dir, 'pw') });
    expect(c.engine.connection?.password).toBe('from-file');
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
    expect(vars).toEqual(
      expect.arrayContaining([
        'OVIRT_URL',
        'KSM_SCORER_LISTEN',
        'KSM_SCORER_REFRESH_SECONDS',
        'KSM_SCORER_MAX_HOSTS',
        'OVIRT_INSECURE',
        'OVIRT_CA_FILE',
        'OVIRT_USERNAME',
        'OVIRT_PASSWORD',
      ]),
    );
  });

  it('rejects credentials inside OVIRT_URL and never echoes them', () => {
    const problems = problemsOf({ OVIRT_URL: 'https://admin:hunter2@e/ovirt-engine/api', OVIRT_USERNAME: 'u', OVIRT_PASSWORD: 'p' });
    expect(problems).toEqual(['OVIRT_URL: must not contain credentials, use OVIRT_USERNAME and OVIRT_PASSWORD']);
  });

  it('refuses both OVIRT_PASSWORD and OVIRT_PASSWORD_FILE, and insecure with a CA file', () => {
    const problems = problemsOf({
      OVIRT_URL: 'https://e/ovirt-engine/api',
      OVIRT_USERNAME: 'u',
      OVIRT_PASSWORD: 'p',
      OVIRT_PASSWORD_FILE: '/x',
      OVIRT_INSECURE: 'true',
      OVIRT_CA_FILE: '/etc/hostname',
    });
    expect(problems.some((p) => p.startsWith('OVIRT_PASSWORD_FILE: set either'))).toBe(true);
    expect(problems.some((p) => p.startsWith('OVIRT_INSECURE:'))).toBe(true);
  });

  it('refuses relations between settings that would make a healthy service flap', () => {
    // KSM_SCORER_MAX_STALENESS_SECONDS=2 under the 5 s events poll: ~60% of calls were UNAVAILABLE.
    expect(problemsOf({ KSM_SCORER_MAX_STALENESS_SECONDS: '2' })).toEqual([
      'KSM_SCORER_MAX_STALENESS_SECONDS: must be more than the stale age (10 s, 2 x the sync interval), or a healthy service would refuse calls between two syncs',
    ]);
    expect(problemsOf({ KSM_SCORER_STALE_SECONDS: '3' })[0]).toMatch(
      /^KSM_SCORER_STALE_SECONDS: must be more than the sync interval \(5 s\)/,
    );
    expect(problemsOf({ KSM_SCORER_EVENTS_SECONDS: '300' })[0]).toMatch(
      /^KSM_SCORER_EVENTS_SECONDS: must be less than KSM_SCORER_REFRESH_SECONDS/,
    );
    // Without events the sync interval is the refresh interval: 2 x 3600 s is past the 600 s maximum set.
    expect(
      problemsOf({ KSM_SCORER_EVENTS_SECONDS: '0', KSM_SCORER_REFRESH_SECONDS: '3600', KSM_SCORER_MAX_STALENESS_SECONDS: '600' })[0],
    ).toMatch(/^KSM_SCORER_MAX_STALENESS_SECONDS: must be more than the stale age \(7200 s/);
    expect(problemsOf({ KSM_SCORER_STALE_SECONDS: '700', KSM_SCORER_MAX_STALENESS_SECONDS: '600' })).toEqual([
      'KSM_SCORER_MAX_STALENESS_SECONDS: must be more than the stale age (700 s), or a healthy service would refuse calls between two syncs',
    ]);
    expect(problemsOf({ KSM_SCORER_REFRESH_SECONDS: '2', KSM_SCORER_EVENTS_SECONDS: '5' })).toEqual([
      'KSM_SCORER_EVENTS_SECONDS: must be less than KSM_SCORER_REFRESH_SECONDS (2 s), or 0 to turn events off',
    ]);
    expect(problemsOf({ OVIRT_TIMEOUT_SECONDS: '60', OVIRT_REQUEST_DEADLINE_SECONDS: '30' })[0]).toMatch(
      /^OVIRT_REQUEST_DEADLINE_SECONDS:/,
    );
    expect(problemsOf({ KSM_SCORER_EVENTS_SECONDS: '0', KSM_SCORER_REFRESH_SECONDS: '60' })).toEqual([]);
  });

  it('defaults that depend on another setting follow it: one setting alone is never refused in the name of another not set (issue 21)', () => {
    // KSM_SCORER_REFRESH_SECONDS=2 alone was refused in the name of KSM_SCORER_EVENTS_SECONDS (5 s, not set).
    expect(problemsOf({ KSM_SCORER_REFRESH_SECONDS: '2' })).toEqual([]);
    expect(loadConfig({ KSM_SCORER_REFRESH_SECONDS: '2' }).inventory).toMatchObject({
      eventsIntervalMs: 1_000,
      staleAfterMs: 2_000,
      maxStalenessMs: 600_000,
    });
    expect(loadConfig({ KSM_SCORER_REFRESH_SECONDS: '1' }).inventory).toMatchObject({ eventsIntervalMs: 500 });
    // KSM_SCORER_STALE_SECONDS=700 alone was refused in the name of KSM_SCORER_MAX_STALENESS_SECONDS (600 s, not set).
    expect(problemsOf({ KSM_SCORER_STALE_SECONDS: '700' })).toEqual([]);
    expect(loadConfig({ KSM_SCORER_STALE_SECONDS: '700' }).inventory).toMatchObject({ staleAfterMs: 700_000, maxStalenessMs: 1_400_000 });
    // Events off alone (refreshes every 300 s, stale at 600 s) was refused in the name of the maximum too.
    expect(loadConfig({ KSM_SCORER_EVENTS_SECONDS: '0' }).inventory).toMatchObject({
      eventsIntervalMs: 0,
      staleAfterMs: 600_000,
      maxStalenessMs: 1_200_000,
    });
    expect(loadConfig({ KSM_SCORER_EVENTS_SECONDS: '0', KSM_SCORER_REFRESH_SECONDS: '3600' }).inventory).toMatchObject({
      staleAfterMs: 7_200_000,
      maxStalenessMs: 14_400_000,
    });
    // Set values are kept as set.
    expect(
      loadConfig({ KSM_SCORER_REFRESH_SECONDS: '2', KSM_SCORER_EVENTS_SECONDS: '0.5', KSM_SCORER_MAX_STALENESS_SECONDS: '5' }).inventory,
    ).toMatchObject({ eventsIntervalMs: 500, maxStalenessMs: 5_000 });
  });

  it('refuses listen addresses that cannot be bound, before anything starts', () => {
    for (const bad of ['256.1.1.1:0', '1.2.3:80', '[::g]:1', 'host:99999', 'host', ':80', 'a b:1']) {
      expect(problemsOf({ KSM_SCORER_LISTEN: bad }), bad).toHaveLength(1);
    }
    for (const good of ['0.0.0.0:50051', '127.0.0.1:0', '[::1]:50051', '[::]:0', 'localhost:8080', 'scorer.example.com:1']) {
      expect(problemsOf({ KSM_SCORER_LISTEN: good }), good).toEqual([]);
    }
  });

  it('the oVirt scheduler proxy is off unless KSM_SCORER_OVIRT_PROXY_LISTEN is set; its body limit is in MiB', () => {
    expect(loadConfig({}).ovirtProxy).toEqual({ listen: undefined, maxBodyBytes: 4 * 2 ** 20, minRateBytes: 500 });
    expect(
      loadConfig({
        KSM_SCORER_OVIRT_PROXY_LISTEN: 'localhost:18781',
        KSM_SCORER_OVIRT_PROXY_MAX_BODY_MB: '0.5',
        KSM_SCORER_OVIRT_PROXY_MIN_RATE_BYTES: '2000',
      }).ovirtProxy,
    ).toEqual({
      listen: { host: 'localhost', port: 18781 },
      maxBodyBytes: 2 ** 19,
      minRateBytes: 2000,
    });
    expect(problemsOf({ KSM_SCORER_OVIRT_PROXY_MIN_RATE_BYTES: '0' })[0]).toMatch(
      /^KSM_SCORER_OVIRT_PROXY_MIN_RATE_BYTES: must be an integer from 1/,
    );
    expect(problemsOf({ KSM_SCORER_OVIRT_PROXY_LISTEN: '18781' })[0]).toMatch(/^KSM_SCORER_OVIRT_PROXY_LISTEN: must be HOST:PORT/);
    expect(problemsOf({ KSM_SCORER_OVIRT_PROXY_MAX_BODY_MB: '0' })[0]).toMatch(/^KSM_SCORER_OVIRT_PROXY_MAX_BODY_MB:/);
  });

  it('KSM_SCORER_WORKERS: an integer from 1, or auto for the CPUs this process may use; 1 (one process) by default', () => {
    expect(loadConfig({}).server.workers).toBe(1);
    expect(loadConfig({ KSM_SCORER_WORKERS: '3' }).server.workers).toBe(3);
    expect(loadConfig({ KSM_SCORER_WORKERS: 'auto' }).server.workers).toBe(Math.min(256, availableParallelism()));
    for (const bad of ['0', '-1', '1.5', 'all', '257', '2 workers']) {
      expect(problemsOf({ KSM_SCORER_WORKERS: bad }), bad).toEqual([
        `KSM_SCORER_WORKERS: must be an integer from 1 to 256, or auto, got ${JSON.stringify(bad)}`,
      ]);
    }
  });

  it('KSM_SCORER_SCORE_CACHE_MB: MiB from 0 (keep none) to 65536; anything else is refused by name, the value echoed short', () => {
    expect(loadConfig({}).limits.scoreCacheBytes).toBe(64 * 2 ** 20);
    expect(loadConfig({ KSM_SCORER_SCORE_CACHE_MB: '0' }).limits.scoreCacheBytes).toBe(0);
    expect(loadConfig({ KSM_SCORER_SCORE_CACHE_MB: '0.5' }).limits.scoreCacheBytes).toBe(2 ** 19);
    for (const bad of ['-1', '65537', '0x10', '1e3', '64MB', 'NaN', '9'.repeat(100_000)]) {
      expect(() => loadConfig({ KSM_SCORER_SCORE_CACHE_MB: bad }), bad.slice(0, 20)).toThrow(
        /^invalid configuration: KSM_SCORER_SCORE_CACHE_MB: must be a number from 0 to 65536 \(MiB\), got ".{1,90}"$/,
      );
    }
  });

  it('KSM_SCORER_MAX_REJECTED_PERCENT and KSM_SCORER_MAX_DROP_PERCENT: whole percents from 0 to 100; anything else is refused by name, the value echoed short', () => {
    expect(loadConfig({}).inventory).toMatchObject({ maxRejectedPercent: 10, maxDropPercent: 25 });
    expect(loadConfig({ KSM_SCORER_MAX_REJECTED_PERCENT: '100', KSM_SCORER_MAX_DROP_PERCENT: '0' }).inventory).toMatchObject({
      maxRejectedPercent: 100,
      maxDropPercent: 0,
    });
    for (const name of ['KSM_SCORER_MAX_REJECTED_PERCENT', 'KSM_SCORER_MAX_DROP_PERCENT']) {
      for (const bad of ['-1', '101', '12.5', '10%', '0x10', '1e1', 'NaN', '9'.repeat(100_000)]) {
        expect(() => loadConfig({ [name]: bad }), `${name}=${bad.slice(0, 20)}`).toThrow(
          new RegExp(`^invalid configuration: ${name}: must be an integer from 0 to 100 \\(%\\), got ".{1,90}"$`),
        );
      }
    }
  });

  it('refuses settings for a real engine when OVIRT_URL is unset, instead of ignoring them for the simulator', () => {
    const ca = join(__dirname, '..', 'fixtures', 'tls', 'ca.pem');
    expect(problemsOf({ OVIRT_CA_FILE: ca })).toEqual([
      'OVIRT_URL: unset, so the embedded simulator would be used and OVIRT_CA_FILE ignored; set OVIRT_URL for a real engine, or unset it',
    ]);
    expect(problemsOf({ OVIRT_INSECURE: 'true', OVIRT_USERNAME: 'admin@internal' })).toEqual([
      'OVIRT_URL: unset, so the embedded simulator would be used and OVIRT_USERNAME, OVIRT_INSECURE ignored; set OVIRT_URL for a real engine, or unset them',
    ]);
    // false is what the simulator does anyway
    expect(problemsOf({ OVIRT_INSECURE: 'false' })).toEqual([]);
  });

  it('describeConfig shows the simulator settings only when the simulator is used', () => {
    expect(describeConfig(loadConfig({}))).toHaveProperty('simulator', { hosts: 50, vms: 1000, seed: 1 });
    const real = describeConfig(
      loadConfig({ OVIRT_URL: 'https://e/ovirt-engine/api', OVIRT_USERNAME: 'u', OVIRT_PASSWORD: 'p', KSM_SCORER_SIM_HOSTS: '9' }),
    );
    expect(real).not.toHaveProperty('simulator');
  });

  it('describeConfig shows the listen addresses as HOST:PORT, and metrics off as off', () => {
    const shown = describeConfig(loadConfig({ KSM_SCORER_LISTEN: '[::1]:6000', KSM_SCORER_METRICS_LISTEN: 'off' }));
    expect(shown).toMatchObject({ server: { listen: '[::1]:6000' }, ovirtProxy: { listen: undefined }, metrics: { listen: 'off' } });
  });

  it('describeConfig leaves the password out', () => {
    const c = loadConfig({ OVIRT_URL: 'https://e/ovirt-engine/api', OVIRT_USERNAME: 'u', OVIRT_PASSWORD: 'top-secret' });
    expect(JSON.stringify(describeConfig(c))).not.toContain('top-secret');
  });
});

describe('settings refused by `ksm-scorer serve`', () => {
  afterEach(() => killAll());

  it('a number setting written in hex, binary or octal is refused: one line naming the variable, exit 2', async () => {
    const cli = join(__dirname, '..', '..', 'dist', 'cli.js');
    for (const raw of ['0x10', '0b101', '0o7']) {
      const proc = spawnProc(process.execPath, [cli, 'serve'], {
        KSM_SCORER_LISTEN: '127.0.0.1:0',
        KSM_SCORER_SIM_HOSTS: '2',
        KSM_SCORER_SIM_VMS: '2',
        OVIRT_PAGE_SIZE: raw,
      });
      const code = await Promise.race([proc.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 5_000))]);
      // Today it starts with pageSize 16, 5 and 7.
      expect({ raw, code }).toEqual({ raw, code: 2 });
      expect(proc.stderr.trim().split('\n')).toHaveLength(1);
      expect(proc.stderr).toMatch(/OVIRT_PAGE_SIZE/);
      await killAll();
    }
  });
});
