#!/usr/bin/env node
/**
 * ksm-scorer serve   start the service (configuration from the environment)
 * ksm-scorer score   ask a running service and print a table, for people at a terminal
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { format, parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { ConfigError, describeConfig, loadConfig } from './config';
import type { ScoreHostsRequest } from './generated/ksmscorer/v1/ScoreHostsRequest';
import type { ScoreHostsResponse__Output } from './generated/ksmscorer/v1/ScoreHostsResponse';
import { createLogger, type Logger } from './log';
import { loadScorerProto } from './server/proto';
import { type RunningService, startService } from './service';

const SERVE_USAGE = `  ksm-scorer serve
      Starts the gRPC service. Configuration comes from the environment (see README).`;
const SCORE_USAGE = `  ksm-scorer score (--vm-id ID | --os-type TYPE [--os-version VERSION]) [--host ID]...
                   [--target HOST:PORT] [--top N] [--timeout SECONDS] [--json]
      Asks a running service and prints the hosts, best first when no --host is given.
      A VM given by --vm-id is scored as the OS it has;
      without --os-version, the version is "", which matches VMs whose version is unknown.
      --target defaults to $KSM_SCORER_TARGET or 127.0.0.1:50051.`;
const USAGE = `usage:
${SERVE_USAGE}
${SCORE_USAGE}
  ksm-scorer --version | --help
  ksm-scorer COMMAND --help`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'score':
      return score(rest);
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    case '--version':
      process.stdout.write(`${packageVersion()}\n`);
      return 0;
    default: {
      const problem = command === undefined ? 'missing command' : `unknown ${command.startsWith('-') ? 'option' : 'command'} ${JSON.stringify(command)}`;
      process.stderr.write(`ksm-scorer: ${problem}\n${USAGE}\n`);
      return 2;
    }
  }
}

/** package.json sits one level above this file, both in src/ and in dist/ (also when installed). */
function packageVersion(): string {
  return (JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
}

async function serve(args: string[]): Promise<number> {
  try {
    if (parseArgs({ args, options: { help: { type: 'boolean', short: 'h' } } }).values.help) {
      process.stdout.write(`usage:\n${SERVE_USAGE}\n`);
      return 0;
    }
  } catch (err) {
    process.stderr.write(`ksm-scorer serve: ${(err as Error).message}\nusage:\n${SERVE_USAGE}\n`);
    return 2;
  }
  let started: { service: RunningService; logger: Logger };
  try {
    started = await startFromEnvironment();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ksm-scorer: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const { service, logger } = started;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn('second signal: exiting without waiting for the drain', { signal });
        resolve(1);
        return;
      }
      stopping = true;
      logger.info('signal received', { signal });
      service.stop().then(() => resolve(0), () => resolve(1));
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/** Throws ConfigError on a bad setting or a listen address that cannot be bound. */
async function startFromEnvironment(): Promise<{ service: RunningService; logger: Logger }> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.log.level);
  // grpc-js writes its own plain-text lines to stderr; the log is JSON lines.
  grpc.setLogger({ error: (...args: unknown[]) => logger.warn('grpc-js', { message: format(...args) }) });
  logger.info('starting ksm-scorer', { config: describeConfig(config) });
  return { service: await startService(config, logger), logger };
}

async function score(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        'vm-id': { type: 'string' },
        'os-type': { type: 'string' },
        'os-version': { type: 'string' },
        host: { type: 'string', multiple: true, default: [] },
        target: { type: 'string', default: process.env.KSM_SCORER_TARGET ?? '127.0.0.1:50051' },
        top: { type: 'string', default: '20' },
        timeout: { type: 'string', default: '10' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`ksm-scorer score: ${(err as Error).message}\nusage:\n${SCORE_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`usage:\n${SCORE_USAGE}\n`);
    return 0;
  }
  const vmId = values['vm-id'];
  const osType = values['os-type'];
  if ((vmId === undefined) === (osType === undefined)) {
    process.stderr.write(`ksm-scorer score: give exactly one of --vm-id or --os-type\nusage:\n${SCORE_USAGE}\n`);
    return 2;
  }
  if (vmId !== undefined && values['os-version'] !== undefined) {
    process.stderr.write(`ksm-scorer score: --os-version goes with --os-type; a VM given by --vm-id is scored as the OS it has\nusage:\n${SCORE_USAGE}\n`);
    return 2;
  }
  const top = Number(values.top);
  const timeout = Number(values.timeout);
  if (!Number.isInteger(top) || top < 1 || !(timeout > 0)) {
    process.stderr.write('ksm-scorer score: --top must be a positive integer and --timeout a positive number\n');
    return 2;
  }
  const request: ScoreHostsRequest = vmId !== undefined
    ? { vm_id: vmId, host_ids: values.host }
    : { os: { type: osType, version: values['os-version'] ?? '' }, host_ids: values.host };

  const proto = loadScorerProto();
  const client = new proto.ksmscorer.v1.HostScorerService(values.target, grpc.credentials.createInsecure());
  try {
    const response = await new Promise<ScoreHostsResponse__Output>((resolve, reject) => {
      client.ScoreHosts(request, { deadline: Date.now() + timeout * 1000 }, (err, res) => (err || !res ? reject(err) : resolve(res)));
    });
    process.stdout.write(values.json ? `${JSON.stringify(response, null, 2)}\n` : formatTable(response, request, top));
    return 0;
  } catch (err) {
    const e = err as grpc.ServiceError;
    process.stderr.write(`ksm-scorer score: ${grpc.status[e.code] ?? 'ERROR'}: ${e.details ?? e.message}\n`);
    return 1;
  } finally {
    client.close();
  }
}

export function formatTable(res: ScoreHostsResponse__Output, req: ScoreHostsRequest, top: number): string {
  const inv = res.inventory;
  const refreshed = inv?.refreshed_at ? new Date(Number(inv.refreshed_at.seconds) * 1000).toISOString() : 'unknown';
  const what = req.vm_id !== undefined ? `VM ${req.vm_id}` : `OS ${req.os?.type}${req.os?.version ? ` ${JSON.stringify(req.os.version)}` : ''}`;
  const shown = req.host_ids && req.host_ids.length > 0 ? res.scores : res.scores.slice(0, top);
  const rows = shown.map((s) => [
    s.host_id,
    s.found ? s.score.toFixed(2) : '-',
    s.found ? String(s.vm_count) : 'not found',
    s.found ? String(s.same_type_count) : '',
    s.found ? String(s.same_version_count) : '',
  ]);
  const header = ['HOST', 'SCORE', 'VMS', 'SAME TYPE', 'SAME VERSION'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const out = [
    `Hosts for ${what}  (score 0..100, higher = more same-OS VMs)`,
    line(header),
    ...rows.map(line),
  ];
  if (shown.length < res.scores.length) out.push(`... ${res.scores.length - shown.length} more hosts (use --top)`);
  out.push(
    `inventory: generation ${inv?.generation ?? '?'}, ${inv?.host_count ?? '?'} hosts, ${inv?.vm_count ?? '?'} VMs, refreshed ${refreshed}${inv?.stale ? ' (STALE)' : ''}`,
  );
  return `${out.join('\n')}\n`;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`ksm-scorer: ${(err as Error)?.message ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
