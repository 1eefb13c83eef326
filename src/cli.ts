#!/usr/bin/env -S node --no-memory-reducer --single-threaded-gc
/**
 * The `ksm-scorer` command: `serve` starts the service; the other commands
 * ask a running one (score, batch, os, hosts, vms, health). Usage errors exit
 * 2, failed calls 1. Serve runs under node with NODE_FLAGS however it was started (node-flags.ts).
 */
// First: signals that come while the rest loads are kept for serve.
import { onStopSignal } from './stop-signals';
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { batchCommand, BATCH_USAGE } from './cli/batch';
import { parseCommand, UsageError } from './cli/command';
import { engineCommand, ENGINE_USAGE } from './cli/engine';
import { healthCommand, HEALTH_USAGE } from './cli/health';
import { hostsCommand, HOSTS_USAGE, osCommand, OS_USAGE, vmsCommand, VMS_USAGE } from './cli/listings';
import { scoreCommand, SCORE_USAGE } from './cli/score';
import { ConfigError, describeConfig, loadConfig, readSetting } from './config/load';
import { SETTINGS } from './config/settings';
import { createLogger, routeGrpcLogs } from './log';
import { followRelay, missingNodeFlags, serveWithNodeFlags } from './node-flags';
import { notifyReady } from './systemd';

const SERVE_USAGE = `  ksm-scorer serve
      Starts the gRPC service. Configuration comes from the environment (see README).`;

const COMMANDS: Record<string, { readonly usage: string; run(args: string[]): Promise<number> }> = {
  serve: { usage: SERVE_USAGE, run: serve },
  score: { usage: SCORE_USAGE, run: scoreCommand },
  batch: { usage: BATCH_USAGE, run: batchCommand },
  os: { usage: OS_USAGE, run: osCommand },
  hosts: { usage: HOSTS_USAGE, run: hostsCommand },
  vms: { usage: VMS_USAGE, run: vmsCommand },
  health: { usage: HEALTH_USAGE, run: healthCommand },
  engine: { usage: ENGINE_USAGE, run: engineCommand },
};

const USAGE = `usage:
${Object.values(COMMANDS)
  .map((c) => c.usage)
  .join('\n')}
  ksm-scorer --version | --help
  ksm-scorer COMMAND --help
The client commands' connection options (--target, --timeout, --tls, --ca, --cert, --key) may
also come before COMMAND: ksm-scorer --target HOST:PORT score ...`;

/** Options every client command takes, also accepted before the command (`ksm-scorer --target H:P score ...`). */
const LEADING_OPTIONS: Record<string, 'value' | 'flag'> = {
  '--target': 'value',
  '--timeout': 'value',
  '--ca': 'value',
  '--cert': 'value',
  '--key': 'value',
  '--tls': 'flag',
};

/** The command's name and its arguments, client options given before the name moved after it. */
function splitCommand(argv: string[]): { name: string | undefined; rest: string[] } {
  const leading: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    const kind = LEADING_OPTIONS[arg.split('=')[0]!];
    if (kind === undefined) break;
    leading.push(arg);
    if (kind === 'value' && !arg.includes('=') && i + 1 < argv.length) leading.push(argv[++i]!);
  }
  const name = argv[i];
  if (leading.length > 0 && (name === undefined || (name.startsWith('-') && name !== '--help' && name !== '-h'))) {
    // `ksm-scorer --target H:P` alone: say what is missing, not that --target is unknown.
    return { name: undefined, rest: [] };
  }
  return { name, rest: [...leading, ...argv.slice(i + 1)] };
}

/** A usage error: one line, and where the usage is (the full usage would bury that line). */
function usageError(prefix: string, message: string, help: string): number {
  process.stderr.write(`${prefix}: ${message} (see ${help})\n`);
  return 2;
}

async function main(argv: string[]): Promise<number> {
  const { name, rest } = splitCommand(argv);
  if (name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (name === '--version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const command = name === undefined ? undefined : Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) {
    const problem =
      name === undefined
        ? `missing command, one of ${Object.keys(COMMANDS).join(', ')}`
        : `unknown ${name.startsWith('-') ? 'option' : 'command'} ${JSON.stringify(name)}`;
    return usageError('ksm-scorer', problem, 'ksm-scorer --help');
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return usageError(`ksm-scorer ${name}`, err.message, `ksm-scorer ${name} --help`);
  }
}

/** package.json sits one level above this file, both in src/ and in dist/ (also when installed). */
function packageVersion(): string {
  return (JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
}

/** A second stop signal sooner than this after the first is the same request again (see serve). */
const REPEATED_SIGNAL_MS = 1_000;

/** What serve runs until a signal: the single process, or the primary of worker processes. */
interface Service {
  stop(): Promise<void>;
}

async function serve(args: string[]): Promise<number> {
  if (parseCommand(args, { help: { type: 'boolean', short: 'h', default: false } }, SERVE_USAGE) === undefined) return 0;
  // Speed must not depend on how serve was started (`node dist/cli.js serve` passes no flags):
  // without the flags it wants, serve runs itself again with them. Worker processes are forked with them.
  const missing = missingNodeFlags();
  if (missing.length > 0 && !cluster.isWorker) return serveWithNodeFlags(missing);
  followRelay();
  // From here on every line written is one JSON object (or a pretty one, when asked).
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      // The configuration did not load, but the format people asked for still applies to this line.
      const format = readSetting(SETTINGS.log.format, process.env[SETTINGS.log.format.env]);
      createLogger('info', { format: 'value' in format ? format.value : SETTINGS.log.format.default }).error(`ksm-scorer: ${err.message}`, {
        problems: err.problems,
      });
      return 2;
    }
    throw err;
  }
  const worker = config.server.workers > 1 && cluster.isWorker;
  const logger = createLogger(config.log.level, {
    format: config.log.format,
    ...(worker ? { context: { worker: cluster.worker!.id } } : {}),
  });
  routeGrpcLogs(logger, config.log.level);
  // A worker process is this same command, forked by the primary (node:cluster): it runs until the
  // primary drains it. Each role loads only its own modules (a worker never loads the engine client).
  if (worker) return (await import('./cluster/worker.js')).runWorker(config, logger);
  // A taken or shared listen address is the whole story: one line, before the start line and its warnings.
  const endpoints = await import('./endpoints.js');
  try {
    await endpoints.checkListenAddresses(config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    logger.error(`ksm-scorer: ${err.message}`, { problems: err.problems });
    return 2;
  }
  // execArgv says which node flags the service runs with (see node-flags.ts).
  logger.info('starting ksm-scorer', { config: describeConfig(config), execArgv: process.execArgv });
  endpoints.warnIfPlaintextEngine(logger, config);
  let service: Service;
  try {
    service =
      config.server.workers > 1
        ? await import('./cluster/primary.js').then((m) => m.startPrimary(config, logger))
        : await import('./service.js').then((m) => m.startService(config, logger));
  } catch (err) {
    if (err instanceof ConfigError) {
      logger.error(`ksm-scorer: ${err.message}`, { problems: err.problems });
      return 2;
    }
    logger.error('ksm-scorer could not start', { err });
    return 1;
  }
  notifyReady(logger);
  return new Promise<number>((resolve) => {
    let stoppingSince: number | undefined;
    // Signals that came while the service started (it may already have been listening) are heard
    // now: stop-signals.ts kept them, so the service stops once started instead of dying mid-call.
    onStopSignal((signal) => {
      if (stoppingSince !== undefined) {
        // A terminal's Ctrl-C reaches the whole process group, and `npm start` forwards the one it
        // got as well: the same request twice within moments, not an operator insisting.
        if (performance.now() - stoppingSince < REPEATED_SIGNAL_MS) return;
        logger.warn('second signal: exiting without waiting for the drain', { signal });
        resolve(1);
        return;
      }
      stoppingSince = performance.now();
      logger.info('signal received', { signal });
      service.stop().then(
        () => resolve(0),
        () => resolve(1),
      );
    });
  });
}

/**
 * Exits once stdout and stderr have drained: into a pipe that is read slowly
 * (`| jq`), writes past its 64 KiB are queued, and process.exit would cut them off.
 */
function exitAfterOutput(code: number): void {
  let pending = 2;
  const done = () => --pending === 0 && process.exit(code);
  process.stdout.write('', done);
  process.stderr.write('', done);
}

if (require.main === module) {
  // The reader went away (`| head`): what is left to write is not wanted. Exit quietly, as Unix tools do.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(0);
  });
  process.stderr.on('error', () => undefined);
  main(process.argv.slice(2)).then(exitAfterOutput, (err: unknown) => {
    process.stderr.write(`ksm-scorer: ${(err as Error)?.message ?? String(err)}\n`);
    exitAfterOutput(1);
  });
}
