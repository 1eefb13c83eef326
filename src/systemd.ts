/**
 * What the service tells systemd when systemd runs it, and nothing otherwise: readiness
 * (Type=notify) and each log line's priority for the journal. Imports nothing of the service,
 * as the logger (log.ts) uses it.
 */
import { execFile } from 'node:child_process';
import { fstatSync } from 'node:fs';

/**
 * Tells systemd the service is up (listening, its configuration valid), so `systemctl start` waits
 * for it and fails when serve exits instead. Node cannot send the datagram NOTIFY_SOCKET expects
 * (no unix datagram sockets), so systemd's own `systemd-notify` sends it: the unit sets
 * NotifyAccess=all, as the message comes from that child, not the main process.
 */
export function notifyReady(logger: { error(msg: string, fields?: Record<string, unknown>): void }): void {
  if (!process.env.NOTIFY_SOCKET) return;
  execFile('systemd-notify', ['--ready'], { timeout: 10_000 }, (err, _stdout, stderr) => {
    if (err !== null)
      logger.error(
        'could not tell systemd the service is ready (systemd-notify --ready failed): systemctl start waits until TimeoutStartSec',
        { err, stderr: stderr.trim() },
      );
  });
}

/** syslog priorities of the log levels (sd-daemon.h): the journal reads them from a `<N>` line prefix. */
const PRIORITY: Record<string, string> = { error: '<3>', warn: '<4>', info: '<6>', debug: '<7>' };

/**
 * Whether stderr is the journal's stream (JOURNAL_STREAM holds its device and inode, systemd.exec(5));
 * checked against stderr itself, as a child whose stderr was redirected inherits the variable.
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (m === null) return false;
  try {
    const stat = fstatSync(2, { bigint: true });
    return stat.dev === BigInt(m[1]!) && stat.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}

/** A JSON log line with its priority in front (`<3>{"level":"error",...`): `journalctl -p err` finds errors. */
export function withPriority(line: string): string {
  const level = /^\{"level":"(\w+)"/.exec(line)?.[1];
  return `${PRIORITY[level ?? 'info'] ?? '<6>'}${line}`;
}
