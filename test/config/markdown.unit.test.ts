import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIRST_SETTINGS, settingsMarkdown } from '../../src/config/markdown';

describe('settingsMarkdown', () => {
  it('the configuration tables are the ones generated from the settings table: all in docs/configuration.md, the first ones in the README', () => {
    for (const [file, expected] of [
      ['docs/configuration.md', settingsMarkdown()],
      ['README.md', settingsMarkdown(FIRST_SETTINGS)],
    ] as const) {
      const text = readFileSync(join(__dirname, '..', '..', file), 'utf8');
      const m = /<!-- settings-table:begin[^>]*-->\n([\s\S]*?)\n<!-- settings-table:end -->/.exec(text);
      expect(m, `${file} lacks the settings-table markers`).not.toBeNull();
      // On a difference: `make readme-config` rewrites the tables from src/config/settings.ts.
      expect(m![1], file).toBe(expected);
    }
    expect(settingsMarkdown(FIRST_SETTINGS).split('\n')).toHaveLength(2 + FIRST_SETTINGS.length);
    // The client commands' settings: in docs/configuration.md only, in a table of their own after the service's.
    const [service, client] = settingsMarkdown().split('\n\nThe client commands');
    expect(service).not.toContain('KSM_SCORER_TARGET');
    expect(client).toContain('| `KSM_SCORER_TARGET` | 127.0.0.1:50051 | HOST:PORT |');
    expect(settingsMarkdown(FIRST_SETTINGS)).not.toContain('KSM_SCORER_TARGET');
  });
});
