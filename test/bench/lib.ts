/** Shared benchmark plumbing: child processes on loopback, percentiles, tables. */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const BUILD_ROOT = join(__dirname, '..', '..');
export const CLI = join(BUILD_ROOT, 'src', 'cli.js');

export interface Child {
  readonly proc: ChildProcess;
  /** JSON log lines seen so far (stderr), parsed. */
  readonly logs: Record<string, unknown>[];
  stdout: string;
  stop(): Promise<void>;
}

/** Spawns node with `args`, optionally pinned to `cpu` with taskset; the child dies with us. */
export function spawnNode(args: string[], env: Record<string, string>, cpu?: number): Child {
  const cmd = cpu !== undefined && hasTaskset() ? 'taskset' : process.execPath;
  const argv = cmd === 'taskset' ? ['-c', String(cpu), process.execPath, ...args] : args;
  const proc = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const child: Child = {
    proc,
    logs: [],
    stdout: '',
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
  let buf = '';
  proc.stderr!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        child.logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        process.stderr.write(`  [child] ${line}\n`);
      }
    }
  });
  proc.stdout!.on('data', (d: Buffer) => (child.stdout += d.toString()));
  process.once('exit', () => proc.kill('SIGKILL'));
  return child;
}

let taskset: boolean | undefined;
function hasTaskset(): boolean {
  if (taskset === undefined) {
    try {
      taskset = require('node:child_process').spawnSync('taskset', ['-c', '0', 'true']).status === 0;
    } catch {
      taskset = false;
    }
  }
  return taskset!;
}

export async function waitFor<T>(fn: () => T | undefined, what: string, timeoutMs = 120_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function median(xs: readonly number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 50);
}

export function table(header: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

export const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

export interface EngineProcess {
  readonly child: Child;
  readonly url: string;
  readonly username: string;
  readonly password: string;
}

/** The simulated engine in its own process (as a remote engine would be). */
export async function startEngineProcess(hosts: number, vms: number, cpu?: number): Promise<EngineProcess> {
  const child = spawnNode([join(__dirname, 'sim-process.js'), String(hosts), String(vms), '1'], {}, cpu);
  const info = await waitFor(
    () => (child.stdout.includes('\n') ? (JSON.parse(child.stdout.split('\n')[0]!) as { url: string; username: string; password: string }) : undefined),
    'simulator',
  );
  return { child, ...info };
}

/** `ksm-scorer serve` against `engine` on 127.0.0.1:0; resolves with its address once it listens. */
export async function startScorerProcess(engine: EngineProcess, env: Record<string, string>, cpu?: number): Promise<{ child: Child; address: string }> {
  const child = spawnNode(
    [CLI, 'serve'],
    { OVIRT_URL: engine.url, OVIRT_USERNAME: engine.username, OVIRT_PASSWORD: engine.password, KSM_SCORER_LISTEN: '127.0.0.1:0', ...env },
    cpu,
  );
  const listening = await waitFor(() => child.logs.find((l) => l.msg === 'ksm-scorer listening'), 'scorer');
  return { child, address: String(listening.address) };
}
