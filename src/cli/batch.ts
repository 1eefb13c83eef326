/**
 * `ksm-scorer batch FILE`: JSON lines of ScoreHostsRequest in, one JSON line
 * of result out per request, through ScoreHostsBatch in chunks, so scripts
 * need no grpcurl. A line that is not a request is a usage error, found
 * before any call.
 */
import { readFileSync } from 'node:fs';
import type { ScoreHostsBatchResponse__Output } from '../generated/ksmscorer/v1/ScoreHostsBatchResponse';
import type { ScoreHostsRequest } from '../generated/ksmscorer/v1/ScoreHostsRequest';
import { status } from '@grpc/grpc-js';
import { CLIENT_OPTIONS, CLIENT_USAGE, parseCommand, positiveInteger, UsageError, withConnection } from './command';

export const BATCH_USAGE = `  ksm-scorer batch FILE [--chunk N] [--target HOST:PORT] [--timeout SECONDS]
      Reads one ScoreHostsRequest a line as JSON (FILE, or - for stdin), e.g.
        {"vm_id": "VM_ID"}
        {"os": {"type": "rhel_9x64", "version": ""}, "host_ids": ["HOST_ID"]}
      and writes one JSON line per request, in order: {"line": N, "scored_os": ..., "scores": [...]}
      or {"line": N, "error": {"code": 5, "status": "NOT_FOUND", "message": "vm_id: ..."}}.
      Blank lines are skipped. --chunk: requests per ScoreHostsBatch call (default 100); each
      call is scored against one inventory snapshot. Exit code 0 when every call was answered
      (items may carry errors), 1 when a call failed.
${CLIENT_USAGE}`;

const OPTIONS = { ...CLIENT_OPTIONS, chunk: { type: 'string', default: '100' } } as const;

/** What a request line may hold: the proto field names, or their JSON-mapping (lowerCamel) names. */
const REQUEST_KEYS: Record<string, keyof ScoreHostsRequest> = {
  vm_id: 'vm_id',
  vmId: 'vm_id',
  os: 'os',
  host_ids: 'host_ids',
  hostIds: 'host_ids',
};

export async function batchCommand(args: string[]): Promise<number> {
  const parsed = parseCommand(args, OPTIONS, BATCH_USAGE, 1);
  if (parsed === undefined) return 0;
  const file = parsed.positionals[0];
  if (file === undefined) throw new UsageError('missing FILE (- reads stdin)');
  const chunk = positiveInteger('chunk', parsed.values.chunk, 100_000);
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    // The command was right; the file is not there (or not readable): a failure, not a usage error.
    process.stderr.write(`ksm-scorer batch: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})\n`);
    return 1;
  }
  const requests = text
    .split('\n')
    .map((line, i) => ({ line: i + 1, text: line.trim() }))
    .filter((l) => l.text !== '')
    .map((l) => ({ line: l.line, request: parseRequestLine(l.text, `${file}:${l.line}`) }));

  return withConnection('batch', parsed.values, async (conn) => {
    for (let start = 0; start < requests.length; start += chunk) {
      const items = requests.slice(start, start + chunk);
      const res = await conn.call<ScoreHostsBatchResponse__Output>(conn.scorer, 'ScoreHostsBatch', {
        requests: items.map((i) => i.request),
      });
      const out = res.results.map((r, k) => {
        const line = items[k]!.line;
        if (r.error) {
          // The index is the call's; the line number says which request it is.
          const message = r.error.message.replace(/^requests\[\d+\]\./, '');
          return JSON.stringify({ line, error: { code: r.error.code, status: status[r.error.code] ?? 'UNKNOWN', message } });
        }
        return JSON.stringify({ line, scored_os: r.scored_os, scores: r.scores });
      });
      process.stdout.write(`${out.join('\n')}\n`);
    }
    return 0;
  });
}

function parseRequestLine(text: string, where: string): ScoreHostsRequest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`${where}: not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`${where}: not a JSON object`);
  const request: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const field = REQUEST_KEYS[key];
    if (field === undefined)
      throw new UsageError(`${where}: unknown field ${JSON.stringify(key)} (a ScoreHostsRequest has vm_id, os, host_ids)`);
    request[field] = v;
  }
  const { vm_id, os, host_ids } = request;
  if (vm_id !== undefined && typeof vm_id !== 'string') throw new UsageError(`${where}: vm_id must be a string`);
  if (host_ids !== undefined && !(Array.isArray(host_ids) && host_ids.every((h) => typeof h === 'string')))
    throw new UsageError(`${where}: host_ids must be a list of strings`);
  if (os !== undefined) {
    if (typeof os !== 'object' || os === null || Array.isArray(os)) throw new UsageError(`${where}: os must be an object`);
    for (const [k, v] of Object.entries(os)) {
      if (k !== 'type' && k !== 'version') throw new UsageError(`${where}: unknown field os.${k} (an OperatingSystem has type, version)`);
      if (typeof v !== 'string') throw new UsageError(`${where}: os.${k} must be a string`);
    }
  }
  if (vm_id !== undefined && os !== undefined) throw new UsageError(`${where}: set either vm_id or os, not both`);
  // The service checks the rest (UUIDs, one of vm_id or os) and answers per item.
  return request;
}
