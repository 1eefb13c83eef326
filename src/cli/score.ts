/**
 * `ksm-scorer score`: one ScoreHosts call as a table for a person at a
 * terminal, with host names (the CLI joins ListHosts; answers stay lean), and
 * a warning on stderr when the OS asked for is not one the inventory has.
 */
import type { ListHostsResponse__Output } from '../generated/ksmscorer/v1/ListHostsResponse';
import type { ListOperatingSystemsResponse__Output } from '../generated/ksmscorer/v1/ListOperatingSystemsResponse';
import type { ScoreHostsRequest } from '../generated/ksmscorer/v1/ScoreHostsRequest';
import type { ScoreHostsResponse__Output } from '../generated/ksmscorer/v1/ScoreHostsResponse';
import { KSM_COLUMNS } from './listings';
import { CLIENT_OPTIONS, CLIENT_USAGE, parseCommand, positiveInteger, UsageError, withConnection } from './command';
import { inventoryLine, json, osLabel, table } from './format';

export const SCORE_USAGE = `  ksm-scorer score (--vm-id ID | --os-type TYPE [--os-version VERSION]) [--host ID]...
                   [--top N] [--json] [--target HOST:PORT] [--timeout SECONDS]
      Scores hosts for a VM or an OS and prints them, best first when no --host is given.
      A VM given by --vm-id is scored as the OS it has;
      without --os-version, the version is "", which matches VMs whose version is unknown.
      An --os-type no VM has is still scored (every host scores 0), with a warning on stderr.
${CLIENT_USAGE}`;

const OPTIONS = {
  ...CLIENT_OPTIONS,
  'vm-id': { type: 'string' },
  'os-type': { type: 'string' },
  'os-version': { type: 'string' },
  host: { type: 'string', multiple: true, default: [] as string[] },
  top: { type: 'string', default: '20' },
  json: { type: 'boolean', default: false },
} as const;

export async function scoreCommand(args: string[]): Promise<number> {
  const parsed = parseCommand(args, OPTIONS, SCORE_USAGE);
  if (parsed === undefined) return 0;
  const { values } = parsed;
  const vmId = values['vm-id'];
  const osType = values['os-type'];
  if ((vmId === undefined) === (osType === undefined)) throw new UsageError('give exactly one of --vm-id or --os-type');
  if (vmId !== undefined && values['os-version'] !== undefined) {
    throw new UsageError('--os-version goes with --os-type; a VM given by --vm-id is scored as the OS it has');
  }
  const top = positiveInteger('top', values.top);
  const request: ScoreHostsRequest =
    vmId !== undefined
      ? { vm_id: vmId, host_ids: values.host }
      : { os: { type: osType, version: values['os-version'] ?? '' }, host_ids: values.host };

  return withConnection('score', values, async (conn) => {
    // The listings only decorate the answer: without them (an older service) the table has no names.
    const [response, hosts, oses] = await Promise.all([
      conn.call<ScoreHostsResponse__Output>(conn.scorer, 'ScoreHosts', request),
      values.json ? undefined : conn.call<ListHostsResponse__Output>(conn.scorer, 'ListHosts', {}).catch(() => undefined),
      osType === undefined
        ? undefined
        : conn.call<ListOperatingSystemsResponse__Output>(conn.scorer, 'ListOperatingSystems', {}).catch(() => undefined),
    ]);
    if (oses !== undefined) warnUnknownOs(request.os as { type: string; version: string }, oses, values['os-version'] !== undefined);
    process.stdout.write(values.json ? json(response) : formatScores(response, request, top, hosts));
    return 0;
  });
}

export function formatScores(
  res: ScoreHostsResponse__Output,
  req: ScoreHostsRequest,
  top: number,
  hosts?: ListHostsResponse__Output,
): string {
  const what =
    req.vm_id !== undefined
      ? `VM ${req.vm_id}, scored as ${osLabel(res.scored_os)}`
      : `OS ${osLabel(req.os as { type: string; version: string })}`;
  const shown = req.host_ids && req.host_ids.length > 0 ? res.scores : res.scores.slice(0, top);
  const byId = new Map((hosts?.hosts ?? []).map((h) => [h.id, h]));
  const rows = shown.map((s) => {
    const host = byId.get(s.host_id);
    const named =
      hosts === undefined
        ? []
        : [
            host?.name ?? '',
            host === undefined ? '' : host.ksm_enabled ? 'on' : 'off',
            host === undefined ? '' : host.host_ksm_enabled ? 'on' : 'off',
          ];
    return [
      s.host_id,
      ...named,
      s.found ? s.score.toFixed(2) : '-',
      s.found ? String(s.vm_count) : 'not found',
      s.found ? String(s.same_type_count) : '',
      s.found ? String(s.same_version_count) : '',
    ];
  });
  const header = ['HOST', ...(hosts === undefined ? [] : ['NAME', 'KSM CLUSTER', 'KSM HOST']), 'SCORE', 'VMS', 'SAME TYPE', 'SAME VERSION'];
  const numbers = new Set([header.length - 4, header.length - 3, header.length - 2, header.length - 1]);
  const out = [`Hosts for ${what}  (score 0..100, higher = more same-OS VMs)`, ...table(header, rows, numbers)];
  if (shown.length < res.scores.length) out.push(`... ${res.scores.length - shown.length} more hosts (use --top)`);
  if (hosts !== undefined) out.push(KSM_COLUMNS);
  if (rows.some((r) => r[2] === 'off'))
    out.push("KSM CLUSTER off: the host's cluster does not run KSM, so same-OS placement saves no memory there");
  out.push(inventoryLine(res.inventory));
  return `${out.join('\n')}\n`;
}

/** On stderr: the OS type (or version) no VM of the inventory has, and the closest ones it does have. */
function warnUnknownOs(os: { type: string; version: string }, listed: ListOperatingSystemsResponse__Output, versionGiven: boolean): void {
  const known = listed.operating_systems.map((u) => u.os!);
  const types = [...new Set(known.map((k) => k.type))];
  if (!types.includes(os.type)) {
    const closest = closestTo(os.type, types);
    process.stderr.write(
      `ksm-scorer score: warning: no VM in the inventory has OS type ${JSON.stringify(os.type)}, so every host scores 0; closest known types: ${closest.join(', ')} (\`ksm-scorer os\` lists them all)\n`,
    );
    return;
  }
  const versions = known.filter((k) => k.type === os.type).map((k) => k.version);
  if (versionGiven && !versions.includes(os.version)) {
    const closest = closestTo(os.version, versions);
    process.stderr.write(
      `ksm-scorer score: warning: no ${os.type} VM in the inventory has version ${JSON.stringify(os.version)}; closest known: ${closest.map((v) => JSON.stringify(v)).join(', ')} (\`ksm-scorer os\` lists them all)\n`,
    );
  }
}

/**
 * The three known names nearest to what was typed: those containing it
 * first ("8.6" in "Red Hat Enterprise Linux 8.6"), then by edit distance
 * over letters and digits, less the common prefix ("rhel8" is nearer
 * rhel_8x64 than other).
 */
function closestTo(typed: string, known: readonly string[]): string[] {
  const key = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');
  const t = key(typed);
  const rank = (k: string) => {
    const c = key(k);
    let prefix = 0;
    while (prefix < t.length && t[prefix] === c[prefix]) prefix++;
    return (t !== '' && c.includes(t) ? -1_000 : 0) + distance(t, c) - prefix;
  };
  return [...known].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1)).slice(0, 3);
}

/** Levenshtein distance. */
function distance(s: string, t: string): number {
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const row = [i];
    for (let j = 1; j <= t.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (s[i - 1] === t[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[t.length]!;
}
