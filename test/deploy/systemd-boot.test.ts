/**
 * deploy/systemd's unit under a real systemd: systemd-nspawn boots this machine's own /usr
 * (`--volatile=yes`: a fresh tmpfs root, nothing of the host's /etc), with the checkout on
 * /opt/ksm and no network but loopback, and test/deploy/systemd-boot.sh puts the unit through
 * what issue 21 found: a bad configuration must fail `systemctl start` (Type=notify) with its
 * error at priority err in the journal; the simulator drop-in starts; a failure that keeps coming
 * ends at the start limit. Skipped, with the reason printed, where nspawn cannot boot here.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');
const BOOT_MS = 150_000;

/** Why a container cannot be booted here, or undefined when it can be tried. */
function cannotBoot(): string | undefined {
  if (process.getuid?.() !== 0) return 'systemd-nspawn needs root';
  try {
    execFileSync('systemd-nspawn', ['--version'], { stdio: 'ignore' });
  } catch {
    return "systemd-nspawn is not installed (test/install-deps.sh installs Debian's systemd-container)";
  }
  if (!existsSync('/usr/lib/systemd/systemd')) return 'no systemd in /usr to boot';
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) return 'dist/cli.js is missing: run `make test` (it builds first)';
  return undefined;
}
const REASON = cannotBoot();
if (REASON !== undefined) console.warn(`SKIPPED booting systemd with deploy/systemd/ksm-scorer.service: ${REASON}`);

/** Boots the container until the check script powers it off; resolves with nspawn's output. */
function boot(dir: string): Promise<{ code: number | null; output: string }> {
  const units = join(dir, 'units');
  const out = join(dir, 'out');
  execFileSync('mkdir', ['-p', units, out]);
  writeFileSync(
    join(units, 'ksm-boot-check.service'),
    '[Unit]\nDescription=ksm-scorer unit checks\n[Service]\nType=oneshot\nExecStart=/opt/ksm/test/deploy/systemd-boot.sh\n',
  );
  // The unit's ExecStart runs the bin itself, through its shebang, as installed.
  chmodSync(join(ROOT, 'dist', 'cli.js'), 0o755);
  const args = [
    '--quiet',
    '--directory=/',
    '--volatile=yes',
    // No systemd on the host side to register with or to make a scope: nspawn's own process is the container's.
    '--register=no',
    '--keep-unit',
    '--private-network',
    `--machine=ksm-boot-${process.pid}`,
    `--bind-ro=${ROOT}:/opt/ksm`,
    `--bind=${units}:/etc/systemd/system`,
    `--bind=${out}:/out`,
    '--boot',
    'systemd.unit=ksm-boot-check.service',
    // An empty /etc is a first boot: without this, systemd-firstboot would ask at the console.
    'systemd.firstboot=off',
  ];
  return new Promise((resolve) => {
    const child = spawn('systemd-nspawn', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), BOOT_MS - 10_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('deploy/systemd under a real systemd (systemd-nspawn)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ksm-boot-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.skipIf(REASON !== undefined)(
    'a bad configuration fails systemctl start with the error at priority err; the simulator drop-in starts; a failure that keeps coming stops at the start limit',
    async () => {
      const { code, output } = await boot(dir);
      const resultFile = join(dir, 'out', 'result');
      const log = existsSync(join(dir, 'out', 'check.log')) ? readFileSync(join(dir, 'out', 'check.log'), 'utf8') : '';
      const result = existsSync(resultFile)
        ? Object.fromEntries(readFileSync(resultFile, 'utf8').trimEnd().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
        : {};
      const context = `nspawn exit ${code}:\n${output}\ncheck.log:\n${log}\nresult: ${JSON.stringify(result)}`;
      expect(result.done, context).toBe('1');
      // 1. Bad configuration: start fails (not "success, then exit 2"), error at priority err, no restart.
      expect(result.bad_start_rc, context).not.toBe('0');
      expect(result.bad_main_status, context).toBe('2');
      expect(result.bad_restarts, context).toBe('0');
      expect(Number(result.bad_err_lines), context).toBeGreaterThan(0);
      expect(result.bad_info_lines_at_err, context).toBe('0');
      // 2. The simulator drop-in: started once ready, warnings at warning, clean stop.
      expect(result.sim_start_rc, context).toBe('0');
      expect(result.sim_active, context).toBe('active');
      expect(result.sim_listening, context).toBe('1');
      expect(Number(result.sim_warn_lines), context).toBeGreaterThan(0);
      expect(result.sim_stop_rc, context).toBe('0');
      expect(result.sim_stopped_result, context).toBe('success');
      // 3. Retried, then failed at the start limit, and left failed.
      expect(Number(result.limit_repeated), context).toBeGreaterThan(0);
      expect(Number(result.limit_restarts), context).toBeGreaterThanOrEqual(3);
      expect(result.limit_restarts_later, context).toBe(result.limit_restarts);
      expect(result.limit_state_later, context).toBe('failed');
    },
    BOOT_MS,
  );
});
