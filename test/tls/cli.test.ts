/**
 * TLS as an operator meets it through the `ksm-scorer` bin (issue 14): the files checked at start
 * (one line naming the variable, exit 2), the plaintext warning, and the client commands over TLS
 * and mutual TLS with --tls/--ca/--cert/--key or their KSM_SCORER_TARGET_* variables.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAll, serveOnSimulator, spawnProc, waitForLog } from '../processes';
import { makePki, type Pki } from './pki';

const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');
const run = (args: string[], env: Record<string, string> = {}) => spawnProc(process.execPath, [CLI, ...args], env);

describe('ksm-scorer and TLS', () => {
  let pki: Pki;
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `make test` (it builds first)');
    pki = makePki();
  });
  afterEach(killAll);
  afterAll(() => pki.remove());

  it('serve checks the TLS files at start: unreadable, a key for another certificate, expired -> one JSON line naming the variable, exit 2', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [
        { KSM_SCORER_TLS_CERT: join(pki.dir, 'missing.pem'), KSM_SCORER_TLS_KEY: pki.server.key },
        /KSM_SCORER_TLS_CERT: cannot read .*missing\.pem \(ENOENT\)$/,
      ],
      [{ KSM_SCORER_TLS_CERT: pki.server.cert, KSM_SCORER_TLS_KEY: pki.dir }, /KSM_SCORER_TLS_KEY: cannot read .* \(EISDIR\)$/],
      [
        { KSM_SCORER_TLS_CERT: pki.server.cert, KSM_SCORER_TLS_KEY: pki.serverNext.key },
        /KSM_SCORER_TLS_KEY: the key in .*server-next\.key does not match the certificate in KSM_SCORER_TLS_CERT/,
      ],
      [
        { KSM_SCORER_TLS_CERT: pki.serverExpired.cert, KSM_SCORER_TLS_KEY: pki.serverExpired.key },
        /KSM_SCORER_TLS_CERT: the certificate in .*server-expired\.pem expired on 2020-01-02T00:00:00\.000Z$/,
      ],
      [
        { KSM_SCORER_TLS_CERT: pki.server.cert, KSM_SCORER_TLS_KEY: pki.server.key, KSM_SCORER_TLS_CLIENT_CA: pki.server.key },
        /KSM_SCORER_TLS_CLIENT_CA: .*server\.key holds no PEM certificate$/,
      ],
      [
        { KSM_SCORER_OVIRT_PROXY_TLS_CERT: pki.server.cert },
        /KSM_SCORER_OVIRT_PROXY_TLS_KEY: required with KSM_SCORER_OVIRT_PROXY_TLS_CERT$/,
      ],
      [
        { KSM_SCORER_TLS_CLIENT_CA: pki.ca },
        /KSM_SCORER_TLS_CLIENT_CA: mutual TLS needs TLS: set KSM_SCORER_TLS_CERT and KSM_SCORER_TLS_KEY too$/,
      ],
    ];
    for (const [env, message] of cases) {
      const p = run(['serve'], { KSM_SCORER_LISTEN: '127.0.0.1:0', ...env });
      expect(await p.exited, JSON.stringify(env)).toBe(2);
      const lines = p.stderr.trimEnd().split('\n');
      expect(lines, p.stderr).toHaveLength(1);
      const line = JSON.parse(lines[0]!) as { level: string; msg: string; problems: string[] };
      expect(line.level).toBe('error');
      expect(line.msg).toMatch(/^ksm-scorer: invalid configuration: /);
      expect(line.problems).toHaveLength(1);
      expect(line.problems[0]).toMatch(message);
    }
  });

  it('plaintext on a non-loopback address logs a warning naming the variables that turn TLS on; loopback does not', async () => {
    const wide = run(['serve'], { KSM_SCORER_LISTEN: '0.0.0.0:0', KSM_SCORER_SIM_HOSTS: '2', KSM_SCORER_SIM_VMS: '4' });
    const [line] = await waitForLog(wide, /.*gRPC listener serves plaintext on a non-loopback address.*/);
    expect(JSON.parse(line)).toMatchObject({
      level: 'warn',
      msg: expect.stringContaining('set KSM_SCORER_TLS_CERT and KSM_SCORER_TLS_KEY for TLS (and KSM_SCORER_TLS_CLIENT_CA for mutual TLS)'),
    });
    const { server } = await serveOnSimulator(run, 2, 4);
    expect(server.stderr).not.toMatch(/serves plaintext/);
  });

  it('an http:// OVIRT_URL beyond loopback logs a warning at start: the password would cross the network in clear text; https:// and loopback do not (issue 21, defect 10)', async () => {
    const engine = {
      OVIRT_USERNAME: 'admin@internal',
      OVIRT_PASSWORD: 'pw-never-logged',
      KSM_SCORER_LISTEN: '127.0.0.1:0',
      KSM_SCORER_METRICS_LISTEN: 'off',
      OVIRT_TIMEOUT_SECONDS: '0.5',
    };
    const plain = run(['serve'], { ...engine, OVIRT_URL: 'http://engine.example.invalid/ovirt-engine/api' });
    const [line] = await waitForLog(plain, /.*"msg":"OVIRT_URL is http:.*/);
    expect(JSON.parse(line)).toMatchObject({
      level: 'warn',
      url: 'http://engine.example.invalid/ovirt-engine/api',
      msg: expect.stringContaining('clear text'),
    });
    await waitForLog(plain, /ksm-scorer listening/);
    for (const url of [
      'https://engine.example.invalid/ovirt-engine/api',
      'http://127.0.0.1:9/ovirt-engine/api',
      'http://[::1]:9/ovirt-engine/api',
    ]) {
      const quiet = run(['serve'], { ...engine, OVIRT_URL: url });
      await waitForLog(quiet, /ksm-scorer listening/);
      expect(quiet.stderr, url).not.toMatch(/clear text/);
    }
    expect(plain.stderr).not.toContain('pw-never-logged');
  });

  it('score and health over mutual TLS: --ca, --cert and --key (or KSM_SCORER_TARGET_*) are answered; a certificate that does not verify or a missing client certificate is said plainly', async () => {
    const tlsEnv = { KSM_SCORER_TLS_CERT: pki.server.cert, KSM_SCORER_TLS_KEY: pki.server.key, KSM_SCORER_TLS_CLIENT_CA: pki.ca };
    const { port } = await serveOnSimulator((args, env) => run(args, { ...env, ...tlsEnv }), 3, 30);
    const target = ['--target', `127.0.0.1:${port}`, '--os-type', 'rhel_8x64', '--timeout', '5'];

    const ok = run(['score', ...target, '--ca', pki.ca, '--cert', pki.client.cert, '--key', pki.client.key]);
    expect(await ok.exited, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^Hosts for OS rhel_8x64/);
    expect(ok.stderr).toBe('');

    const byEnv = run(['score', ...target], {
      KSM_SCORER_TARGET_CA: pki.ca,
      KSM_SCORER_TARGET_CERT: pki.client.cert,
      KSM_SCORER_TARGET_KEY: pki.client.key,
    });
    expect(await byEnv.exited, byEnv.stderr).toBe(0);
    // Every client command shares the connection options: health too (an exec probe with TLS).
    const health = run(['health', '--target', `127.0.0.1:${port}`, '--ca', pki.ca, '--cert', pki.client.cert, '--key', pki.client.key]);
    expect(await health.exited, health.stderr).toBe(0);
    expect(health.stdout).toBe('SERVING\n');

    const untrusted = run(['score', ...target, '--tls', '--cert', pki.client.cert, '--key', pki.client.key]);
    expect(await untrusted.exited).toBe(1);
    expect(untrusted.stderr).toMatch(
      /^ksm-scorer score: the server's certificate does not verify \(.*certificate.*\): give the CA that signed it with --ca/,
    );

    const noClientCert = run(['score', ...target, '--ca', pki.ca]);
    expect(await noClientCert.exited).toBe(1);
    expect(noClientCert.stderr).toMatch(
      /^ksm-scorer score: the server refused this client's certificate, or its absence \(TLS alert "certificate required"\): give one signed by a CA the server trusts with --cert and --key\n$/,
    );

    const half = run(['score', ...target, '--ca', pki.ca, '--cert', pki.client.cert]);
    expect(await half.exited).toBe(2);
    expect(half.stderr).toBe(
      'ksm-scorer score: --cert and --key go together: a client certificate and its private key (see ksm-scorer score --help)\n',
    );
  });
});

describe('ksm-scorer client commands and TLS mistakes (issue 21)', () => {
  let pki: Pki;
  let port: string;
  beforeAll(async () => {
    pki = makePki();
    const tlsEnv = { KSM_SCORER_TLS_CERT: pki.server.cert, KSM_SCORER_TLS_KEY: pki.server.key, KSM_SCORER_TLS_CLIENT_CA: pki.ca };
    ({ port } = await serveOnSimulator((args, env) => run(args, { ...env, ...tlsEnv }), 3, 30));
  }, 30_000);
  afterAll(async () => {
    await killAll();
    pki.remove();
  });

  it('a plaintext call to a TLS server says TLS, and no empty "Resolution note:" leaks', async () => {
    const p = run(['health', '--target', `127.0.0.1:${port}`, '--timeout', '5']);
    expect(await p.exited).toBe(1);
    expect(p.stderr).not.toMatch(/Resolution note/);
    expect(p.stderr).toMatch(/^ksm-scorer health: .*TLS.*--tls.*--ca.*\n$/);
  });

  it('a client certificate from another CA is said in words, not ECONNRESET', async () => {
    const p = run([
      'health',
      '--target',
      `127.0.0.1:${port}`,
      '--timeout',
      '5',
      '--ca',
      pki.ca,
      '--cert',
      pki.otherClient.cert,
      '--key',
      pki.otherClient.key,
    ]);
    expect(await p.exited).toBe(1);
    expect(p.stderr).not.toMatch(/ECONNRESET/);
    expect(p.stderr).toMatch(/^ksm-scorer health: the server refused this client's certificate/);
  });

  it('a --cert and --key that do not belong together: a usage error naming both options, no OpenSSL text', async () => {
    const p = run(['health', '--target', `127.0.0.1:${port}`, '--ca', pki.ca, '--cert', pki.client.cert, '--key', pki.otherClient.key]);
    expect(await p.exited).toBe(2);
    expect(p.stderr).toBe(
      `ksm-scorer health: --key ${pki.otherClient.key} is not the private key of --cert ${pki.client.cert} (see ksm-scorer health --help)\n`,
    );
  });
});
