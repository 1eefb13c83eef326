import { describe, expect, it } from 'vitest';
import { nameAfter, type Setting } from '../../src/config/kinds';
import { SETTINGS, type SettingName } from '../../src/config/settings';

const names = Object.values(SETTINGS).flatMap((group) => Object.values(group as Record<string, Setting<unknown>>).map((s) => s.env));

describe('setting names, read from the table', () => {
  it('each names one setting, with the project prefixes; KSM_SCORER_INTERNAL_ is left to variables the service sets for itself', () => {
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^(KSM_SCORER|OVIRT)_[A-Z0-9_]+$/);
    expect(names.filter((name) => name.startsWith('KSM_SCORER_INTERNAL_'))).toEqual([]);
  });

  // The type checks here fail `tsc -p test` (make test) rather than vitest.
  it('SettingName holds the names of the table and nothing else, so a removed or renamed setting is a compile error where code names it', () => {
    const wide: string extends SettingName ? true : false = false;
    const some: SettingName[] = ['OVIRT_URL', 'KSM_SCORER_TLS_RELOAD_SECONDS', 'KSM_SCORER_METRICS_TLS_CLIENT_CA', 'KSM_SCORER_TARGET_KEY'];
    // @ts-expect-error an internal variable (node-flags.ts), not a setting
    const internal: SettingName = 'KSM_SCORER_INTERNAL_RELAYED';
    expect(wide).toBe(false);
    expect(names).toEqual(expect.arrayContaining(some));
    expect(names).not.toContain(internal);
  });

  it('help text that abbreviates a name takes the rest from the table, and only after a name it starts with', () => {
    expect(nameAfter(SETTINGS.connection.password, SETTINGS.connection.passwordFile)).toBe('_FILE');
    expect(nameAfter(SETTINGS.client.target, SETTINGS.client.cert)).toBe('_CERT');
    // @ts-expect-error OVIRT_URL does not start with OVIRT_PASSWORD
    nameAfter(SETTINGS.connection.password, SETTINGS.connection.url);
  });
});
