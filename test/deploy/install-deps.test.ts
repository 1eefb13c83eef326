/**
 * test/install-deps.sh (what `make test` runs first) against apt's real locks: while another
 * process holds the dpkg and apt lists locks, it waits for them instead of stopping the suite at
 * once, and gives up after APT_LOCK_TIMEOUT seconds saying why. Runs as root only (taking apt's
 * locks needs it); elsewhere it skips and says so.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const SCRIPT = join(__dirname, '..', 'install-deps.sh');
const LOCKS = ['/var/lib/dpkg/lock-frontend', '/var/lib/dpkg/lock', '/var/lib/apt/lists/lock'];
const root = process.getuid?.() === 0 && existsSync('/usr/bin/apt-get') && existsSync('/usr/bin/python3');
if (!root) console.log('install-deps.test.ts skipped: needs root and apt-get to take apt\'s locks');

/** Holds apt's locks (fcntl, as apt takes them) for `seconds`; resolves once they are held. */
async function holdAptLocks(seconds: number): Promise<{ child: ChildProcess; released: Promise<void> }> {
  const script = `import fcntl, sys, time
fs = [open(p, 'w') for p in ${JSON.stringify(LOCKS)}]
for f in fs: fcntl.lockf(f, fcntl.LOCK_EX)
print('held', flush=True)
time.sleep(${seconds})`;
  const child = spawn('/usr/bin/python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const released = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
    child.on('exit', (code) => reject(new Error(`the lock holder exited (${code}) before holding the locks`)));
  });
  return { child, released };
}

function runScript(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [SCRIPT], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describe.skipIf(!root)('test/install-deps.sh and the dpkg lock', () => {
  let holder: ChildProcess | undefined;
  afterEach(() => {
    holder?.kill('SIGKILL');
    holder = undefined;
  });

  it('waits while another apt process holds the lock, then installs', async () => {
    const { child, released } = await holdAptLocks(4);
    holder = child;
    let releasedFirst = false;
    void released.then(() => (releasedFirst = true));
    // tini is installed already: apt still takes the locks to install it.
    const { code, out } = await runScript({ INSTALL_DEPS_ALSO: 'tini', APT_LOCK_TIMEOUT: '120' });
    expect(code, out).toBe(0);
    expect(out).toMatch(/another apt process holds the lock; waiting up to 120 s/);
    expect(releasedFirst, 'the script finished while the lock was still held').toBe(true);
  }, 150_000);

  it('gives up after APT_LOCK_TIMEOUT seconds, saying why', async () => {
    const { child } = await holdAptLocks(120);
    holder = child;
    const { code, out } = await runScript({ INSTALL_DEPS_ALSO: 'tini', APT_LOCK_TIMEOUT: '3' });
    expect(code).toBe(1);
    expect(out).toMatch(/another apt process held the lock for more than 3 s \(APT_LOCK_TIMEOUT\); giving up/);
    expect(child.exitCode, 'the lock was still held when the script gave up').toBeNull();
  }, 60_000);
});
