/**
 * The client commands (score, health, ...) against a TLS service (issue 14): --tls, --ca, --cert, --key or their
 * KSM_SCORER_TARGET_* variables, and plain words when the handshake fails.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAll, serveOnSimulator, spawnProc } from '../processes';
import { makePki, type Pki } from './pki';

const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');
const run = (args: string[], env: Record<string, string> = {}) => spawnProc(process.execPath, [CLI, ...args], env);

describe('ksm-scorer client commands over TLS', () => {
  let pki: Pki;
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `make test` (it builds first)');
    pki = makePki();
  });
  afterEach(killAll);
  afterAll(() => pki.remove());

  it('score and health over mutual TLS: --ca, --cert and --key (or KSM_SCORER_TARGET_*) are answered; a certificate that does not verify or a missing client certificate is said plainly', async () => {
    const tlsEnv = { KSM_SCORER_TLS_CERT: pki.server.cert, KSM_SCORER_TLS_KEY: pki.server.key, KSM_SCORER_TLS_CLIENT_CA: pki.ca };
    const { port } = await serveOnSimulator((args, env) => run(args, { ...env, ...tlsEnv }), 3, 30);
    const target = ['--target', `127.0.0.1:${port}`, '--os-type', 'rhel_8x64', '--timeout', '5'];

    const ok = run(['score', ...target, '--ca', pki.ca, '--cert', pki.client.cert, '--key', pki.client.key]);
    expect(await ok.exited, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^Hosts for OS rhel_8x64/);
    expect(ok.stderr).toBe('');

    const byEnv = run(['score', ...target], { KSM_SCORER_TARGET_CA: pki.ca, KSM_SCORER_TARGET_CERT: pki.client.cert, KSM_SCORER_TARGET_KEY: pki.client.key });
    expect(await byEnv.exited, byEnv.stderr).toBe(0);
    // Every client command shares the connection options: health too (an exec probe with TLS).
    const health = run(['health', '--target', `127.0.0.1:${port}`, '--ca', pki.ca, '--cert', pki.client.cert, '--key', pki.client.key]);
    expect(await health.exited, health.stderr).toBe(0);
    expect(health.stdout).toBe('SERVING\n');

    const untrusted = run(['score', ...target, '--tls', '--cert', pki.client.cert, '--key', pki.client.key]);
    expect(await untrusted.exited).toBe(1);
    expect(untrusted.stderr).toMatch(/^ksm-scorer score: the server's certificate does not verify \(.*certificate.*\): give the CA that signed it with --ca/);

    const noClientCert = run(['score', ...target, '--ca', pki.ca]);
    expect(await noClientCert.exited).toBe(1);
    expect(noClientCert.stderr).toMatch(/^ksm-scorer score: the server refused this client's certificate, or its absence \(TLS alert "certificate required"\): give one signed by a CA the server trusts with --cert and --key\n$/);

    const half = run(['score', ...target, '--ca', pki.ca, '--cert', pki.client.cert]);
    expect(await half.exited).toBe(2);
    expect(half.stderr).toMatch(/^ksm-scorer score: --cert and --key go together: a client certificate and its private key\nusage:\n/);
  });
});
