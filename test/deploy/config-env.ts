/** The environment variables the service reads, from its settings table, for checking deployment files. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Setting } from '../../src/config/kinds';
import { type Config, loadConfig } from '../../src/config/load';
import { SERVICE_SETTINGS } from '../../src/config/settings';

/** Every variable the service reads: the env names of the service's groups of the settings table (src/config/settings.ts; not the client commands'). */
export function configEnvNames(): ReadonlySet<string> {
  return new Set(Object.values(SERVICE_SETTINGS).flatMap((group) => Object.values(group).map((setting: Setting<unknown>) => setting.env)));
}

/**
 * loadConfig on a deployment file's environment. Paths in *_FILE settings name files on the
 * target machine, so they are replaced by local files: a password, and the test CA.
 */
export function loadDeployedConfig(env: Readonly<Record<string, string>>): Config {
  const dir = mkdtempSync(join(tmpdir(), 'ksm-deploy-env-'));
  writeFileSync(join(dir, 'password'), 'secret\n');
  const local: Record<string, string> = { OVIRT_PASSWORD_FILE: join(dir, 'password'), OVIRT_CA_FILE: join(__dirname, '..', 'fixtures', 'tls', 'ca.pem') };
  try {
    return loadConfig(Object.fromEntries(Object.entries(env).map(([k, v]) => [k, k.endsWith('_FILE') ? (local[k] ?? v) : v])));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
