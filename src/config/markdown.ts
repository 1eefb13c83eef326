/**
 * The configuration tables of the docs, generated from the settings table: every setting in
 * docs/configuration.md (the client commands' in a table of their own), the first ones in the
 * README. `make readme-config` writes both; a test checks they match.
 */
import type { Setting } from './kinds';
import { CLIENT_SETTINGS, SERVICE_SETTINGS, SETTINGS } from './settings';

/** The settings people set first: the README's short table (docs/configuration.md has them all). */
export const FIRST_SETTINGS: readonly Setting<unknown>[] = [
  SETTINGS.server.listen,
  SETTINGS.connection.url,
  SETTINGS.connection.username,
  SETTINGS.connection.passwordFile,
  SETTINGS.connection.caFile,
  SETTINGS.ovirtProxy.listen,
  SETTINGS.metrics.listen,
  SETTINGS.server.workers,
  SETTINGS.log.format,
];

/** The service's settings as a table, all of them or `only` those; all of them are followed by the client commands' table. */
export function settingsMarkdown(only?: readonly Setting<unknown>[]): string {
  const service = table(
    Object.values(SERVICE_SETTINGS)
      .flatMap((group) => Object.values(group as Record<string, Setting<unknown>>))
      .filter((s) => only === undefined || only.includes(s)),
  );
  if (only !== undefined) return service;
  const client = table(Object.values(CLIENT_SETTINGS));
  return `${service}\n\nThe client commands (\`score\`, \`hosts\`, \`vms\`, \`os\`, \`health\`, \`batch\`, \`engine status\`) read their own settings; the service ignores them:\n\n${client}`;
}

function table(settings: readonly Setting<unknown>[]): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const rows = settings.map((s) => `| \`${s.env}\` | ${cell(s.defaultText)} | ${cell(s.rangeText)} | ${cell(s.description)} |`);
  return ['| variable | default | accepted | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
