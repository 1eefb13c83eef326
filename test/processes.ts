/** Child processes for tests that run the `ksm-scorer` bin as operators do: output captured, killed after each test. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

export interface Proc {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

const running: Proc[] = [];

/** Runs `command` with the test's environment minus its OVIRT_* and KSM_SCORER_* settings, plus `env`. */
export function spawnProc(command: string, args: string[], env: Record<string, string> = {}, cwd?: string, stdin?: string): Proc {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OVIRT_') && !k.startsWith('KSM_SCORER_')));
  // /metrics on a free port unless told otherwise: tests run side by side, the default 9464 would collide.
  const child = spawn(command, args, {
    env: { ...clean, KSM_SCORER_METRICS_LISTEN: '127.0.0.1:0', ...env },
    stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    cwd,
  });
  if (stdin !== undefined) child.stdin!.end(stdin);
  const proc: Proc = { child, stdout: '', stderr: '', exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
  child.stdout!.on('data', (d: Buffer) => (proc.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (proc.stderr += d.toString()));
  running.push(proc);
  return proc;
}

export async function waitForLog(proc: Proc, pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = proc.stderr.match(pattern);
    if (m) return m;
    if (Date.now() > end) throw new Error(`no log line matching ${pattern} in:\n${proc.stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `serve` on the embedded simulator, on a free loopback port, once its first inventory is loaded. */
export async function serveOnSimulator(
  run: (args: string[], env: Record<string, string>) => Proc,
  hosts: number,
  vms: number,
): Promise<{ server: Proc; port: string }> {
  const server = run(['serve'], {
    KSM_SCORER_LISTEN: '127.0.0.1:0',
    KSM_SCORER_METRICS_LISTEN: '127.0.0.1:0',
    KSM_SCORER_SIM_HOSTS: String(hosts),
    KSM_SCORER_SIM_VMS: String(vms),
  });
  await waitForLog(server, /embedded SIMULATED oVirt engine/);
  const port = (await waitForLog(server, /"address":"127\.0\.0\.1:(\d+)".*"msg":"ksm-scorer listening"/))[1]!;
  await waitForLog(server, /"msg":"inventory refreshed"/);
  return { server, port };
}

/** The built `ksm-scorer serve` (dist/cli.js) on its embedded simulator with extra settings, once loaded; its gRPC address. */
export async function serveCli(hosts: number, vms: number, env: Record<string, string> = {}): Promise<{ server: Proc; address: string }> {
  const cli = join(__dirname, '..', 'dist', 'cli.js');
  const { server, port } = await serveOnSimulator((args, e) => spawnProc(process.execPath, [cli, ...args], { ...e, ...env }), hosts, vms);
  return { server, address: `127.0.0.1:${port}` };
}

/** For afterEach: kills what is still running and waits for it. */
export async function killAll(): Promise<void> {
  for (const p of running.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
}
