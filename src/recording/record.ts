/**
 * `ksm-scorer engine record DIR`: asks the engine what a full refresh asks
 * (hosts, clusters, every VM page with the configured page size, the newest
 * events) and what the engine view reads (scheduling units, policies, their
 * weights), and writes each answer as the engine sent it. Only answers are
 * written: never the URL's host, the account, the password or the token.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SETTINGS } from '../config/settings';
import { ScorerError } from '../errors';
import { EngineClient } from '../ovirt/client';
import { parsePolicies } from '../ovirt/scheduling';
import { Anonymizer } from './anonymize';
import { FORMAT, INDEX_FILE, type RecordedAnswer, type RecordingIndex } from './format';

/** Recent events kept with a recording: enough to see what moved lately, bounded. */
export const RECORDED_EVENTS = 500;

interface Request {
  readonly path: string;
  readonly query: Record<string, string>;
  readonly endpoint: string;
  /** Names to learn before anonymizing (hosts, VMs, clusters). */
  readonly kind?: 'host' | 'vm' | 'cluster';
}

/** Reads every answer, then writes them (anonymized when asked); returns the index written. */
export async function recordAnswers(
  client: EngineClient,
  dir: string,
  options: { anonymize: boolean; pageSize: number; maxVms: number },
): Promise<RecordingIndex> {
  if (existsSync(dir) && readdirSync(dir).length > 0)
    throw new ScorerError('invalid_argument', `${dir} is not empty: record into a new directory`);
  const got: { request: Request; bytes: Buffer }[] = [];
  const get = async (request: Request) => {
    const bytes = await client.getRaw(request.path, request.query, request.endpoint);
    got.push({ request, bytes });
    return bytes;
  };
  await get({ path: '/hosts', query: {}, endpoint: 'GET /hosts', kind: 'host' });
  await get({ path: '/clusters', query: {}, endpoint: 'GET /clusters', kind: 'cluster' });
  for (let page = 1; ; page++) {
    const bytes = await get({
      path: '/vms',
      query: { search: `sortby name asc page ${page}`, max: String(options.pageSize) },
      endpoint: 'GET /vms',
      kind: 'vm',
    });
    const vms = (JSON.parse(bytes.toString('utf8')) as { vm?: unknown }).vm;
    const count = Array.isArray(vms) ? vms.length : vms === undefined ? 0 : 1;
    if (count < options.pageSize) break;
    if (page * options.pageSize >= options.maxVms)
      throw new ScorerError(
        'engine_protocol',
        `engine has at least ${options.maxVms} VMs, the most a refresh reads (${SETTINGS.engine.maxVms.env})`,
      );
  }
  await get({ path: '/events', query: { max: String(RECORDED_EVENTS) }, endpoint: 'GET /events' });
  await get({ path: '/schedulingpolicyunits', query: {}, endpoint: 'GET /schedulingpolicyunits' });
  const policies = await get({ path: '/schedulingpolicies', query: {}, endpoint: 'GET /schedulingpolicies' });
  for (const p of parsePolicies(JSON.parse(policies.toString('utf8')))) {
    await get({
      path: `/schedulingpolicies/${encodeURIComponent(p.id)}/weights`,
      query: {},
      endpoint: 'GET /schedulingpolicies/{id}/weights',
    });
  }

  const anonymizer = options.anonymize ? new Anonymizer() : undefined;
  if (anonymizer !== undefined)
    for (const { request, bytes } of got)
      if (request.kind !== undefined) anonymizer.learn(request.kind, JSON.parse(bytes.toString('utf8')));
  mkdirSync(dir, { recursive: true });
  const answers: RecordedAnswer[] = got.map(({ request, bytes }, i) => {
    const file = `${String(i + 1).padStart(4, '0')}${request.path.replace(/[^a-z]+/gi, '-')}.json`;
    const body = anonymizer === undefined ? bytes : Buffer.from(JSON.stringify(anonymizer.apply(JSON.parse(bytes.toString('utf8')))));
    writeFileSync(join(dir, file), body, { mode: 0o600 });
    return { path: request.path, query: request.query, file };
  });
  const index: RecordingIndex = { format: FORMAT, recordedAt: new Date().toISOString(), anonymized: options.anonymize, answers };
  writeFileSync(join(dir, INDEX_FILE), `${JSON.stringify(index, null, 2)}\n`, { mode: 0o600 });
  return index;
}
