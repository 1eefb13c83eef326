/**
 * The flags `ksm-scorer serve` wants node to run with, and how serve gets them however it was
 * started: the bin's shebang passes them, worker processes are forked with them, and
 * `node dist/cli.js serve` (or any start without them) runs itself again with them added.
 *
 * --no-memory-reducer: V8's memory reducer shrinks an idle heap to its minimum; the next burst of
 * calls then runs in a heap so small that it is marked and compacted every ~100 ms, at half the
 * calls per second, for as long as the burst lasts (docs/benchmarks.md, "After an idle spell").
 * A service's heap should stay as its load made it. V8 reads the flag only at start, so a process
 * started without it cannot turn it on (v8.setFlagsFromString comes too late).
 *
 * --single-threaded-gc: the collector works on the thread it stops, without helper threads. The heap
 * is small (the inventory lives in typed arrays, outside it), so helpers save little; but where
 * cores are shared (workers, the decode thread, a CPU quota) a pause waits for helpers that are not
 * running. A 100,000-VM refresh on 2 cores: longest block 16-19 ms with helpers, 6-9 ms without
 * (docs/benchmarks.md, issue 18).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { onStopSignal } from './stop-signals';

export const NODE_FLAGS: readonly string[] = ['--no-memory-reducer', '--single-threaded-gc'];

/** The flags node was started without. */
export const missingNodeFlags = (): string[] => NODE_FLAGS.filter((flag) => !process.execArgv.includes(flag));

/**
 * INTERNAL, not a setting (so not in the settings table, config/settings.ts, nor in the docs): set
 * only by serveWithNodeFlags, in the environment of the process it starts, to tell that process its
 * parent is only a relay; followRelay drops it. KSM_SCORER_INTERNAL_ names no setting may take.
 */
const INTERNAL_RELAYED = 'KSM_SCORER_INTERNAL_RELAYED';

/** Signals the relay passes on; SIGTERM and SIGINT come through stop-signals.ts (kept from the first moment). */
const PASSED_ON = ['SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

/**
 * Runs this same command again with `missing` added and relays it: the child inherits stdin, stdout
 * and stderr (its log lines are the service's), gets the stop signals this process gets, and its
 * exit is this one's (the same code, or the same signal). Costs one idle node process beside the
 * service; the alternative, serving at half speed after idle spells, is worse. Node 20 has no exec().
 */
export function serveWithNodeFlags(missing: readonly string[]): Promise<number> {
  // An IPC channel, so the child sees this relay go even when it is killed with SIGKILL (followRelay).
  const child = spawn(process.execPath, [...process.execArgv, ...missing, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [INTERNAL_RELAYED]: '1' },
  });
  // Ctrl-C at a terminal reaches both processes: the child takes the copy relayed moments later as
  // the same request (cli.ts, REPEATED_SIGNAL_MS).
  onStopSignal((signal) => child.kill(signal));
  for (const signal of PASSED_ON) process.on(signal, () => child.kill(signal));
  return new Promise((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`ksm-scorer: could not start node again with ${missing.join(' ')}: ${err.message}\n`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      if (signal === null) return resolve(code ?? 1);
      // Die of the same signal, so a supervisor sees what the service saw; as PID 1, where a signal
      // without a handler is ignored, exit with the shell's 128 + n instead.
      for (const s of ['SIGTERM', 'SIGINT', ...PASSED_ON]) process.removeAllListeners(s);
      process.kill(process.pid, signal);
      setTimeout(() => resolve(128 + (constants.signals[signal] ?? 0)), 100).unref();
    });
  });
}

/**
 * In a process serveWithNodeFlags started: when the relay is gone (killed, even with SIGKILL), stop
 * as on SIGTERM instead of serving on unseen. The mark is dropped so worker processes do not see it.
 */
export function followRelay(): void {
  if (process.env[INTERNAL_RELAYED] === undefined) return;
  delete process.env[INTERNAL_RELAYED];
  if (process.channel === undefined) return;
  process.channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
