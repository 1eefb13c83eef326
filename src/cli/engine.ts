/**
 * `ksm-scorer engine status`: whether the oVirt engine really uses this
 * service (its view of the unit, the policies weighing it, the clusters
 * running them, the calls it made), with what to do next.
 * `ksm-scorer engine record DIR`: saves what the engine answers to the reads
 * ksm-scorer makes, for a bug report or a test fixture (see recording/).
 */
import * as grpc from '@grpc/grpc-js';
import type { GetEngineStatusResponse__Output } from '../generated/ksmscorer/v1/GetEngineStatusResponse';
import { nameAfter } from '../config/kinds';
import { SETTINGS } from '../config/settings';
import { loadEngineStatusProto } from '../engine-view/service';
import { CLIENT_OPTIONS, CLIENT_USAGE, parseCommand, UsageError, withConnection } from './command';
import { json, table } from './format';

const { url: OVIRT_URL, username: OVIRT_USERNAME, password: OVIRT_PASSWORD, passwordFile: OVIRT_PASSWORD_FILE } = SETTINGS.connection;

export const ENGINE_USAGE = `  ksm-scorer engine status [--json] [--target HOST:PORT] [--timeout SECONDS]
      Whether the oVirt engine uses ksm-scorer: the unit ksm_same_os_score as the engine lists it,
      the scheduling policies that weigh it (and their factor), the clusters that run them, and the
      engine's XML-RPC calls of the last hour; then what to do next, in plain sentences.
${CLIENT_USAGE}
  ksm-scorer engine record DIR [--anonymize]
      Saves what the engine (${OVIRT_URL.env}, ${OVIRT_USERNAME.env}, ${OVIRT_PASSWORD.env}[${nameAfter(OVIRT_PASSWORD, OVIRT_PASSWORD_FILE)}], as serve reads them)
      answers to the reads ksm-scorer makes: hosts, clusters, VMs page by page, events and the
      scheduling set-up. No credential or token is written. --anonymize replaces host, VM and
      cluster names, keeping ids, OS types and versions. Serve from it with ${OVIRT_URL.env}=file:DIR.`;

const STATUS_OPTIONS = { ...CLIENT_OPTIONS, json: { type: 'boolean', default: false } } as const;
const RECORD_OPTIONS = { anonymize: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } } as const;

export async function engineCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'status') return statusCommand(rest);
  if (sub === 'record') return recordCommand(rest);
  if (sub === '--help' || sub === '-h') {
    process.stdout.write(`usage:\n${ENGINE_USAGE}\n`);
    return 0;
  }
  throw new UsageError(
    sub === undefined ? 'missing subcommand: status or record' : `unknown subcommand ${JSON.stringify(sub)}: status or record`,
  );
}

async function statusCommand(args: string[]): Promise<number> {
  const parsed = parseCommand(args, STATUS_OPTIONS, ENGINE_USAGE);
  if (parsed === undefined) return 0;
  return withConnection('engine status', parsed.values, async (conn) => {
    const proto = loadEngineStatusProto();
    const client = new proto.ksmscorer.v1.EngineStatusService(conn.target, conn.credentials) as unknown as grpc.Client;
    try {
      const res = await conn.call<GetEngineStatusResponse__Output>(client, 'GetEngineStatus', {}).catch((err: grpc.ServiceError) => {
        // Versions before it do not answer it.
        if (err.code === grpc.status.UNIMPLEMENTED)
          err.details = `${err.details}: this service does not answer engine status (it is older than the command)`;
        throw err;
      });
      process.stdout.write(parsed.values.json ? json(res) : `${formatStatus(res).join('\n')}\n`);
      return 0;
    } finally {
      client.close();
    }
  });
}

const time = (t: { seconds: string } | null | undefined) => (t ? new Date(Number(t.seconds) * 1000).toISOString() : 'never');

export function formatStatus(res: GetEngineStatusResponse__Output): string[] {
  const state = res.state.replace(/^ENGINE_USE_STATE_/, '').toLowerCase();
  const lines = [`state: ${state}`, ...res.advice.map((a) => `- ${a}`)];
  const engine = res.engine;
  if (engine?.known) {
    lines.push(
      '',
      `engine set-up read ${time(engine.read_time)}: unit ${engine.unit_discovered ? (engine.unit_enabled ? 'discovered, enabled' : 'discovered, DISABLED') : 'NOT discovered'}`,
    );
    if (engine.clusters.length > 0) {
      lines.push(
        ...table(
          ['cluster', 'scheduling policy', 'weighs unit'],
          engine.clusters.map((c) => [c.name, c.policy_name === '' ? '-' : c.policy_name, c.weighs_unit ? 'yes' : 'no']),
          new Set(),
        ),
      );
    }
  } else if (engine !== null) {
    lines.push('', `engine set-up unknown: ${engine.unknown_reason}`);
  }
  const calls = res.calls;
  if (calls !== null) {
    lines.push('', `XML-RPC listener: ${calls.listening ? 'on' : 'off'}; last call: ${time(calls.last_call_time)}`);
    if (calls.counts.length > 0)
      lines.push(
        ...table(
          ['method', 'outcome', 'last hour'],
          calls.counts.map((c) => [c.method, c.outcome, c.count]),
          new Set([2]),
        ),
      );
  }
  return lines;
}

async function recordCommand(args: string[]): Promise<number> {
  const parsed = parseCommand(args, RECORD_OPTIONS, ENGINE_USAGE, 1);
  if (parsed === undefined) return 0;
  const dir = parsed.positionals[0];
  if (dir === undefined) throw new UsageError('missing DIR: where to write the recording');
  const { recordEngine } = await import('./engine-record.js');
  return recordEngine(dir, { anonymize: parsed.values.anonymize });
}
