/**
 * `ksm-scorer serve` and TLS (issue 14): the files checked at start (one line naming the variable,
 * exit 2), and the warning about plaintext on a non-loopback address.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAll, serveOnSimulator, spawnProc, waitForLog } from '../processes';
import { makePki, type Pki } from './pki';

const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');
const run = (args: string[], env: Record<string, string> = {}) => spawnProc(process.execPath, [CLI, ...args], env);

describe('ksm-scorer serve and TLS', () => {
  let pki: Pki;
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `make test` (it builds first)');
    pki = makePki();
  });
  afterEach(killAll);
  afterAll(() => pki.remove());

  it('serve checks the TLS files at start: unreadable, a key for another certificate, expired -> one line naming the variable, exit 2', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ KSM_SCORER_TLS_CERT: join(pki.dir, 'missing.pem'), KSM_SCORER_TLS_KEY: pki.server.key }, /KSM_SCORER_TLS_CERT: cannot read .*missing\.pem \(ENOENT\)$/],
      [{ KSM_SCORER_TLS_CERT: pki.server.cert, KSM_SCORER_TLS_KEY: pki.dir }, /KSM_SCORER_TLS_KEY: cannot read .* \(EISDIR\)$/],
      [{ KSM_SCORER_TLS_CERT: pki.server.cert, KSM_SCORER_TLS_KEY: pki.serverNext.key }, /KSM_SCORER_TLS_KEY: the key in .*server-next\.key does not match the certificate in KSM_SCORER_TLS_CERT/],
      [{ KSM_SCORER_TLS_CERT: pki.serverExpired.cert, KSM_SCORER_TLS_KEY: pki.serverExpired.key }, /KSM_SCORER_TLS_CERT: the certificate in .*server-expired\.pem expired on 2020-01-02T00:00:00\.000Z$/],
      [{ KSM_SCORER_TLS_CERT: pki.server.cert, KSM_SCORER_TLS_KEY: pki.server.key, KSM_SCORER_TLS_CLIENT_CA: pki.server.key }, /KSM_SCORER_TLS_CLIENT_CA: .*server\.key holds no PEM certificate$/],
      [{ KSM_SCORER_OVIRT_PROXY_TLS_CERT: pki.server.cert }, /KSM_SCORER_OVIRT_PROXY_TLS_KEY: required with KSM_SCORER_OVIRT_PROXY_TLS_CERT$/],
      [{ KSM_SCORER_TLS_CLIENT_CA: pki.ca }, /KSM_SCORER_TLS_CLIENT_CA: mutual TLS needs TLS: set KSM_SCORER_TLS_CERT and KSM_SCORER_TLS_KEY too$/],
    ];
    for (const [env, message] of cases) {
      const p = run(['serve'], { KSM_SCORER_LISTEN: '127.0.0.1:0', ...env });
      expect(await p.exited, JSON.stringify(env)).toBe(2);
      const lines = p.stderr.trimEnd().split('\n');
      expect(lines, p.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^ksm-scorer: invalid configuration: /);
      expect(lines[0]).toMatch(message);
    }
  });

  it('plaintext on a non-loopback address logs a warning naming the variables that turn TLS on; loopback does not', async () => {
    const wide = run(['serve'], { KSM_SCORER_LISTEN: '0.0.0.0:0', KSM_SCORER_SIM_HOSTS: '2', KSM_SCORER_SIM_VMS: '4' });
    const [line] = await waitForLog(wide, /.*gRPC listener serves plaintext on a non-loopback address.*/);
    expect(JSON.parse(line)).toMatchObject({ level: 'warn', msg: expect.stringContaining('set KSM_SCORER_TLS_CERT and KSM_SCORER_TLS_KEY for TLS (and KSM_SCORER_TLS_CLIENT_CA for mutual TLS)') });
    const { server } = await serveOnSimulator(run, 2, 4);
    expect(server.stderr).not.toMatch(/serves plaintext/);
  });
});
