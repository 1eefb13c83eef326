/** Shared benchmark plumbing: child processes on loopback, percentiles, tables. */
import { NODE_FLAGS } from '../../src/node-flags';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { PROTO_ROOT, SCORER_PROTO } from '../../src/contract/proto';

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
  proc.stderr.on('data', (d: Buffer) => {
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
  proc.stdout.on('data', (d: Buffer) => (child.stdout += d.toString()));
  const kill = () => proc.kill('SIGKILL');
  process.once('exit', kill);
  proc.once('exit', () => process.off('exit', kill));
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
  return taskset;
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

/** CPU time a process has run so far, all its threads, in seconds (schedstat: ns, where /proc/PID/stat counts 10 ms ticks). */
export function cpuSeconds(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return ns / 1e9;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function median(xs: readonly number[]): number {
  return percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
}

export function table(header: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

export const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

/** Repeated runs as "median (min-max)". */
export function spread(xs: readonly number[], digits: number): string {
  const s = [...xs].sort((a, b) => a - b);
  return `${fmt(median(s), digits)} (${fmt(s[0]!, digits)}-${fmt(s.at(-1)!, digits)})`;
}

export interface EngineProcess {
  readonly child: Child;
  readonly url: string;
  readonly username: string;
  readonly password: string;
}

/** The simulated engine in its own process (as a remote engine would be); `churn`: changes per second (sim-process.ts). */
export async function startEngineProcess(hosts: number, vms: number, cpu?: number, churn = 0): Promise<EngineProcess> {
  const child = spawnNode([join(__dirname, 'sim-process.js'), String(hosts), String(vms), '1', String(churn)], {}, cpu);
  const info = await waitFor(
    () =>
      child.stdout.includes('\n')
        ? (JSON.parse(child.stdout.split('\n')[0]!) as { url: string; username: string; password: string })
        : undefined,
    'simulator',
  );
  return { child, ...info };
}

/** How many requests the engine process has answered so far (sim-process.ts prints it on SIGUSR2). */
export async function engineRequests(sim: Child): Promise<number> {
  const lines = sim.stdout.split('\n').length;
  sim.proc.kill('SIGUSR2');
  const line = await waitFor(
    () => (sim.stdout.split('\n').length > lines ? sim.stdout.trim().split('\n').at(-1) : undefined),
    'engine request count',
  );
  return (JSON.parse(line) as { requests: number }).requests;
}

/** `ksm-scorer serve` against `engine` on 127.0.0.1:0; resolves with its address once it listens. */
/** `cli`: another build's cli.js, to compare builds in one run (test/bench/compare.ts). */
/** `pid`: the serving process's, from its start line (what CPU and memory are measured on). */
export async function startScorerProcess(
  engine: EngineProcess,
  env: Record<string, string>,
  cpu?: number,
  cli = CLI,
): Promise<{ child: Child; address: string; pid: number }> {
  // This build as `node dist/cli.js serve`, without node's flags: serve runs itself again with them
  // (src/node-flags.ts), so its speed is the one operators get however they start it. Another
  // build (make bench-compare) may predate that: it gets the flags its bin's shebang passes.
  const child = spawnNode(
    cli === CLI ? [cli, 'serve'] : [...NODE_FLAGS, cli, 'serve'],
    {
      OVIRT_URL: engine.url,
      OVIRT_USERNAME: engine.username,
      OVIRT_PASSWORD: engine.password,
      KSM_SCORER_LISTEN: '127.0.0.1:0',
      KSM_SCORER_METRICS_LISTEN: '127.0.0.1:0',
      ...env,
    },
    cpu,
  );
  const listening = await waitFor(() => child.logs.find((l) => l.msg === 'ksm-scorer listening'), 'scorer');
  return { child, address: String(listening.address), pid: Number(listening.pid) };
}

export const benchDir = mkdtempSync(join(tmpdir(), 'ksm-bench-'));
export const SCORE_HOSTS_PATH = '/ksmscorer.v1.HostScorerService/ScoreHosts';
export const identity = (b: Buffer) => b;

let types: { Request: protobuf.Type; Response: protobuf.Type; BatchRequest: protobuf.Type } | undefined;
/** protobufjs types of the contract, field names as in the proto (as the service uses them). */
export function scorerTypes(): { Request: protobuf.Type; Response: protobuf.Type; BatchRequest: protobuf.Type } {
  if (types === undefined) {
    const root = new protobuf.Root().loadSync(join(PROTO_ROOT, SCORER_PROTO), { keepCase: true });
    types = {
      Request: root.lookupType('ksmscorer.v1.ScoreHostsRequest'),
      Response: root.lookupType('ksmscorer.v1.ScoreHostsResponse'),
      BatchRequest: root.lookupType('ksmscorer.v1.ScoreHostsBatchRequest'),
    };
  }
  return types;
}

/** A gRPC message frame: flag byte, 4-byte big-endian length, protobuf body. */
export const frame = (body: Uint8Array) => {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
};

export function rawCall(address: string, path: string, body: Uint8Array): Promise<{ bytes: Buffer; ms: number }> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(path, identity, identity, Buffer.from(body), (err, res) => {
      client.close();
      if (err || !res) reject(err ?? new Error('no response'));
      else resolve({ bytes: res, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
    }),
  );
}

export interface H2loadResult {
  qps: number;
  succeeded: number;
  failed: number;
  /** Sorted. */
  latenciesMs: number[];
  /** Each request: when it started (epoch ms) and how long it took (ms), in log order. */
  requests: { startMs: number; ms: number }[];
}

export interface H2loadOptions {
  clients: number;
  streams: number;
  seconds: number;
  rps?: number;
  /** An XML-RPC body over HTTP/1.1 (one call in flight per connection) instead of a gRPC frame. */
  xml?: boolean;
  /** 1 s of warm-up before the `seconds` measured (default); false: all of it counts. */
  warmUp?: boolean;
  /** false: h2load runs on any core (the worker-scaling bench), not pinned to CPU 1. */
  pin?: boolean;
}

/** h2load (pinned to CPU 1 where taskset works, unless `pin` is false) sending `frameFile`; the per-request log gives the latencies. */
export function h2load(address: string, path: string, frameFile: string, opts: H2loadOptions): H2loadResult {
  const run = h2loadCommand(address, path, frameFile, opts);
  const out = spawnSync(run.command, run.args, { encoding: 'utf8', timeout: run.timeoutMs });
  return h2loadResult(`${out.stdout}${out.stderr}`, run.log);
}

/** The same, without blocking: for loads that must run at the same time. */
export function h2loadAsync(address: string, path: string, frameFile: string, opts: H2loadOptions): Promise<H2loadResult> {
  const run = h2loadCommand(address, path, frameFile, opts);
  return new Promise((resolve, reject) => {
    const child = spawn(run.command, run.args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: run.timeoutMs });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', reject);
    child.on('close', () => {
      try {
        resolve(h2loadResult(text, run.log));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

/**
 * Several h2load runs at once (each its own process, its own frame): their
 * results, and the CPU seconds process `pid` used between the end of the
 * warm-up (1 s) and the end of the runs.
 */
export async function h2loadTogether(
  runs: readonly { address: string; path: string; frameFile: string }[],
  opts: H2loadOptions,
  pid: number,
): Promise<{ results: H2loadResult[]; cpuSeconds: number }> {
  let from = NaN;
  const warmedUp = setTimeout(() => (from = cpuSeconds(pid)), 1_000);
  const results = await Promise.all(runs.map((run) => h2loadAsync(run.address, run.path, run.frameFile, opts)));
  clearTimeout(warmedUp);
  return { results, cpuSeconds: cpuSeconds(pid) - from };
}

let h2loadRuns = 0;
function h2loadCommand(
  address: string,
  path: string,
  frameFile: string,
  opts: H2loadOptions,
): { command: string; args: string[]; log: string; timeoutMs: number } {
  const log = join(benchDir, `h2load-${Date.now()}-${h2loadRuns++}.log`);
  const protocol = opts.xml ? ['--h1', '-H', 'content-type: text/xml'] : ['-H', 'content-type: application/grpc', '-H', 'te: trailers'];
  const args = [
    '-D',
    String(opts.seconds),
    ...(opts.warmUp === false ? [] : ['--warm-up-time', '1']),
    '-c',
    String(opts.clients),
    '-m',
    String(opts.streams),
    '-t',
    '1',
    '-d',
    frameFile,
    ...protocol,
    `--log-file=${log}`,
    ...(opts.rps !== undefined ? [`--rps=${opts.rps}`] : []),
    `http://${address}${path}`,
  ];
  const taskset = opts.pin !== false && spawnSync('taskset', ['-c', '1', 'true']).status === 0;
  return {
    command: taskset ? 'taskset' : 'h2load',
    args: taskset ? ['-c', '1', 'h2load', ...args] : args,
    log,
    timeoutMs: (opts.seconds + 30) * 1000,
  };
}

function h2loadResult(text: string, log: string): H2loadResult {
  const qps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(text)?.[1]);
  const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(text);
  if (!Number.isFinite(qps) || !m) throw new Error(`h2load output not understood:\n${text}`);
  const requests = readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [start = '0', , micros = '0'] = line.split('\t');
      return { startMs: Number(start) / 1000, ms: Number(micros) / 1000 };
    });
  const latenciesMs = requests.map((r) => r.ms).sort((a, b) => a - b);
  return { qps, succeeded: Number(m[1]), failed: Number(m[2]), latenciesMs, requests };
}

/** grpc-status must be OK and the answer well formed, before and after each load run (h2load only sees HTTP 200). */
export async function checkGrpc(address: string, body: Uint8Array, hosts: number): Promise<void> {
  const { bytes } = await rawCall(address, SCORE_HOSTS_PATH, body);
  const res = scorerTypes().Response.decode(bytes) as unknown as { scores: unknown[] };
  if (res.scores.length !== hosts) throw new Error(`expected ${hosts} scores from ${address}, got ${res.scores.length}`);
}

/** The first `n` VMs, read from the engine the way a scheduler would know them. */
export async function engineVms(engine: EngineProcess, n: number): Promise<{ id: string; host?: { id: string } }[]> {
  const { request } = await import('undici');
  const api = new URL(engine.url);
  const t = await request(`${api.origin}/ovirt-engine/sso/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: engine.username, password: engine.password }).toString(),
  });
  const { access_token } = (await t.body.json()) as { access_token: string };
  const res = await request(`${engine.url}/vms?max=${n}`, {
    headers: { authorization: `Bearer ${access_token}`, accept: 'application/json' },
  });
  return ((await res.body.json()) as { vm: { id: string; host?: { id: string } }[] }).vm;
}
