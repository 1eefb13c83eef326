/**
 * What serve tells systemd, against systemd's own parts where no systemd runs: readiness through the
 * real `systemd-notify` to a NOTIFY_SOCKET datagram socket (Python binds it: node cannot), and log
 * lines with their syslog priority when stderr is the journal stream (JOURNAL_STREAM), as journald
 * reads them with SyslogLevelPrefix=yes (its default). Issue 21, "Under a real systemd".
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAll, spawnProc, waitForLog } from '../processes';

const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');
const SIM = { KSM_SCORER_LISTEN: '127.0.0.1:0', KSM_SCORER_METRICS_LISTEN: 'off', KSM_SCORER_SIM_HOSTS: '2', KSM_SCORER_SIM_VMS: '4' };

function hasSystemdNotify(): boolean {
  try {
    execFileSync('systemd-notify', ['--help'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const NOTIFY = hasSystemdNotify();
if (!NOTIFY) console.warn("SKIPPED readiness through systemd-notify: systemd-notify is not installed (test/install-deps.sh installs Debian's systemd)");

/** A unix datagram socket as systemd's NOTIFY_SOCKET, each message received printed on a line. */
function notifySocket(path: string) {
  const script = `import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint('bound',flush=True)\nwhile True:\n  print(s.recv(4096).decode().replace('\\n',' ').strip(),flush=True)\n`;
  return spawnProc('python3', ['-c', script, path]);
}

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 250 && !done(); i++) await new Promise((r) => setTimeout(r, 20));
}

/** serve with stderr as "the journal stream": JOURNAL_STREAM set to stderr's own device and inode. */
const serveOnJournal = (env: Record<string, string>, stream = '$(stat -L -c %d:%i /proc/self/fd/2)') =>
  spawnProc('sh', ['-c', `JOURNAL_STREAM=${stream} exec "$0" "$1" serve`, process.execPath, CLI], env);

describe('serve under systemd', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ksm-notify-'));
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `make test` (it builds first)');
  });
  afterEach(killAll);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe.skipIf(!NOTIFY)('readiness (Type=notify)', () => {
    it('READY=1 reaches NOTIFY_SOCKET once serve listens, sent by systemd-notify', async () => {
      const socket = join(dir, 'ready.sock');
      const receiver = notifySocket(socket);
      await until(() => receiver.stdout.startsWith('bound'));
      const serve = spawnProc(process.execPath, [CLI, 'serve'], { ...SIM, NOTIFY_SOCKET: socket });
      await waitForLog(serve, /"msg":"ksm-scorer listening"/);
      await until(() => receiver.stdout.includes('READY=1'));
      expect(receiver.stdout).toMatch(/^READY=1$/m);
      expect(serve.stderr).not.toContain('could not tell systemd');
      serve.child.kill('SIGTERM');
      expect(await serve.exited).toBe(0);
    });

    it('a bad configuration exits 2 without READY=1: `systemctl start` fails instead of reporting success', async () => {
      const socket = join(dir, 'bad.sock');
      const receiver = notifySocket(socket);
      await until(() => receiver.stdout.startsWith('bound'));
      const serve = spawnProc(process.execPath, [CLI, 'serve'], { KSM_SCORER_REFRESH_SECONDS: 'often', NOTIFY_SOCKET: socket });
      expect(await serve.exited).toBe(2);
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.stdout).not.toContain('READY=1');
    });
  });

  describe('journal priorities', () => {
    it('with stderr the journal stream, each line starts with its syslog priority: <3> error, <4> warn, <6> info', async () => {
      const bad = serveOnJournal({ KSM_SCORER_REFRESH_SECONDS: 'often' });
      expect(await bad.exited).toBe(2);
      expect(bad.stderr).toMatch(/^<3>\{"level":"error",.*"msg":"ksm-scorer: invalid configuration: [^\n]*\n$/);

      const ok = serveOnJournal(SIM);
      await waitForLog(ok, /"msg":"ksm-scorer listening"/);
      expect(ok.stderr).toMatch(/^<6>\{"level":"info",[^\n]*"msg":"starting ksm-scorer"/m);
      expect(ok.stderr).toMatch(/^<4>\{"level":"warn",[^\n]*embedded SIMULATED/m);
      for (const line of ok.stderr.trimEnd().split('\n')) expect(line).toMatch(/^<[3467]>\{/);
    });

    it('JOURNAL_STREAM inherited by a process whose stderr is elsewhere: plain JSON lines, no prefix', async () => {
      const bad = serveOnJournal({ KSM_SCORER_REFRESH_SECONDS: 'often' }, '1:1');
      expect(await bad.exited).toBe(2);
      expect(bad.stderr).toMatch(/^\{"level":"error",/);
    });
  });
});
