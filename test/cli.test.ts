/** The built `ksm-scorer` bin as an operator runs it: real processes, real signals. */
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatedEngine } from '../src/simulator/engine';
import { NODE_FLAGS } from '../src/node-flags';
import { startSimulator } from './helpers';
import { killAll, type Proc, serveOnSimulator, spawnProc, waitForLog } from './processes';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const run = (args: string[], env: Record<string, string> = {}) => spawnProc(process.execPath, [CLI, ...args], env);

describe('ksm-scorer CLI', () => {
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `make test` (it builds first)');
  });
  afterEach(killAll);

  it('serve stops at start-up on bad configuration: one JSON line naming the variables, exit code 2', async () => {
    const p = run(['serve'], { KSM_SCORER_REFRESH_SECONDS: 'often', KSM_SCORER_LISTEN: 'everywhere' });
    expect(await p.exited).toBe(2);
    const lines = p.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as { level: string; msg: string; problems: string[] };
    expect(line.level).toBe('error');
    expect(line.msg).toMatch(/^ksm-scorer: invalid configuration: .*KSM_SCORER_LISTEN: .*KSM_SCORER_REFRESH_SECONDS: must be a number/);
    expect(line.problems).toHaveLength(2);
  });

  it('--version prints the package version; --help and COMMAND --help print usage on stdout, exit 0', async () => {
    const version = run(['--version']);
    expect(await version.exited).toBe(0);
    expect(version.stdout).toBe(
      `${(JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version}\n`,
    );

    const help = run(['--help']);
    expect(await help.exited).toBe(0);
    expect(help.stdout).toMatch(/^usage:\n {2}ksm-scorer serve\n[^]* {2}ksm-scorer score [^]* {2}ksm-scorer --version \| --help\n/);
    for (const command of ['serve', 'score', 'batch', 'os', 'hosts', 'vms', 'health']) {
      expect(help.stdout, command).toContain(`\n  ksm-scorer ${command}`);
      const p = run([command, '--help']);
      expect(await p.exited).toBe(0);
      expect(p.stdout).toMatch(new RegExp(`^usage:\\n {2}ksm-scorer ${command}`));
      expect(p.stdout.match(/ksm-scorer \w+/g), 'only its own usage').toEqual([`ksm-scorer ${command}`]);
    }
  }, 60_000); // a dozen node processes one after another: slow on a loaded machine

  it('usage errors are one line naming the problem and where the usage is: exit 2, nothing started (issue 21: 14 to 60 lines of usage buried it)', async () => {
    const ALL = 'serve, score, batch, os, hosts, vms, health, engine';
    for (const [args, message] of [
      [['--verbose'], 'ksm-scorer: unknown option "--verbose" (see ksm-scorer --help)'],
      [[], `ksm-scorer: missing command, one of ${ALL} (see ksm-scorer --help)`],
      [['--target', '127.0.0.1:1'], `ksm-scorer: missing command, one of ${ALL} (see ksm-scorer --help)`],
      [['start'], 'ksm-scorer: unknown command "start" (see ksm-scorer --help)'],
      [['serve', '--port', '1'], 'ksm-scorer serve: unknown option --port (see ksm-scorer serve --help)'],
      [['serve', 'now'], 'ksm-scorer serve: unexpected argument "now" (see ksm-scorer serve --help)'],
      [['score', '--os-type', 'rhel_8x64', '--colour'], 'ksm-scorer score: unknown option --colour (see ksm-scorer score --help)'],
      [['os', 'extra'], 'ksm-scorer os: unexpected argument "extra" (see ksm-scorer os --help)'],
      [['hosts', '--host', 'x'], 'ksm-scorer hosts: unknown option --host (see ksm-scorer hosts --help)'],
      [['vms', '--max', '1001'], 'ksm-scorer vms: --max must be a whole number from 1 to 1000, got "1001" (see ksm-scorer vms --help)'],
      [
        ['health', '--timeout', '0'],
        'ksm-scorer health: --timeout must be a positive number of seconds, got "0" (see ksm-scorer health --help)',
      ],
      [['batch'], 'ksm-scorer batch: missing FILE (- reads stdin) (see ksm-scorer batch --help)'],
      [['batch', 'a', 'b'], 'ksm-scorer batch: unexpected argument "b" (see ksm-scorer batch --help)'],
    ] as const) {
      const p = run([...args]);
      expect(await p.exited, args.join(' ')).toBe(2);
      expect(p.stderr).toBe(`${message}\n`);
      expect(p.stdout).toBe('');
    }
  }, 60_000); // a dozen node processes one after another: slow on a loaded machine

  it("option errors on a subcommand are said in the option's terms, not Node's parser's (issue 21)", async () => {
    for (const [args, message] of [
      // was: "To specify a positional argument starting with a '-', place it at the end ... '-- "--version"
      [['score', '--version'], 'unknown option --version; `ksm-scorer --version` prints the version'],
      // was: "Option '--top' argument is ambiguous"
      [['score', '--os-type', 'x', '--top', '-1'], '--top must be a whole number, 1 or more, got "-1"'],
      // was: "from 1 to 9007199254740991"
      [['score', '--os-type', 'x', '--top', '0'], '--top must be a whole number, 1 or more, got "0"'],
      [['score', '--os-type', 'x', '--top', '2.5'], '--top must be a whole number, 1 or more, got "2.5"'],
      [['score', '--os-type', 'x', '--top'], '--top needs a value'],
      [['score', '--os-type', 'x', '--json=yes'], '--json takes no value'],
    ] as const) {
      const p = run([...args]);
      expect(await p.exited, args.join(' ')).toBe(2);
      expect(p.stderr).toBe(`ksm-scorer score: ${message} (see ksm-scorer score --help)\n`);
    }
  }, 60_000);

  it('--target must be HOST:PORT: no port, a URL or "" is a usage error naming HOST:PORT, not a failed call (issue 21)', async () => {
    for (const target of ['127.0.0.1', 'http://127.0.0.1:50051', '', '127.0.0.1:0', '127.0.0.1:65536', 'host name:1']) {
      const p = run(['health', '--target', target, '--timeout', '2']);
      expect(await p.exited, target).toBe(2);
      expect(p.stderr).toBe(
        `ksm-scorer health: --target must be HOST:PORT, e.g. 127.0.0.1:50051 or [::1]:50051, got ${JSON.stringify(target)} (see ksm-scorer health --help)\n`,
      );
    }
    // From the environment, the variable is named.
    const env = run(['hosts'], { KSM_SCORER_TARGET: 'localhost' });
    expect(await env.exited).toBe(2);
    expect(env.stderr).toMatch(
      /^ksm-scorer hosts: KSM_SCORER_TARGET must be HOST:PORT, .* got "localhost" \(see ksm-scorer hosts --help\)\n$/,
    );
    // KSM_SCORER_TARGET_TLS is read by the settings table's flag kind: a value that is neither true nor false is named, not taken as false.
    const tls = run(['health'], { KSM_SCORER_TARGET_TLS: 'maybe' });
    expect(await tls.exited).toBe(2);
    expect(tls.stderr).toBe(
      'ksm-scorer health: KSM_SCORER_TARGET_TLS must be true or false (or 1, 0, yes, no), got "maybe" (see ksm-scorer health --help)\n',
    );
    // Spaces around the address are trimmed alike from the option and the variable: both reach the call (refused: exit 1).
    for (const p of [
      run(['health', '--target', ' 127.0.0.1:1 ', '--timeout', '2']),
      run(['health', '--timeout', '2'], { KSM_SCORER_TARGET: ' 127.0.0.1:1 ' }),
    ]) {
      expect(await p.exited, p.stderr).toBe(1);
    }
  }, 60_000);

  it('batch on a file that is not there is a failure (exit 1), not a usage error', async () => {
    const p = run(['batch', '/does/not/exist.jsonl']);
    expect(await p.exited).toBe(1);
    expect(p.stderr).toBe('ksm-scorer batch: cannot read /does/not/exist.jsonl (ENOENT)\n');
  });

  it('KSM_SCORER_LOG_FORMAT=pretty applies to configuration errors too (they were JSON whatever the format)', async () => {
    const p = run(['serve'], { KSM_SCORER_LOG_FORMAT: 'pretty', KSM_SCORER_REFRESH_SECONDS: 'often' });
    expect(await p.exited).toBe(2);
    expect(p.stderr).not.toMatch(/^\{/m);
    expect(p.stderr).toMatch(/ERROR.*ksm-scorer: invalid configuration: KSM_SCORER_REFRESH_SECONDS: must be a number/);
  });

  it("two of the service's own listeners on one address are refused before anything starts, naming both settings", async () => {
    const free = createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const port = (free.address() as AddressInfo).port;
    await new Promise((resolve) => free.close(resolve));
    for (const [env, message] of [
      [
        { KSM_SCORER_LISTEN: `127.0.0.1:${port}`, KSM_SCORER_METRICS_LISTEN: `127.0.0.1:${port}` },
        `KSM_SCORER_METRICS_LISTEN: 127.0.0.1:${port} is also KSM_SCORER_LISTEN (127.0.0.1:${port}): give each listener its own port`,
      ],
      [
        { KSM_SCORER_LISTEN: `0.0.0.0:${port}`, KSM_SCORER_OVIRT_PROXY_LISTEN: `localhost:${port}` },
        `KSM_SCORER_OVIRT_PROXY_LISTEN: localhost:${port} is also KSM_SCORER_LISTEN (0.0.0.0:${port}): give each listener its own port`,
      ],
    ] as const) {
      const p = run(['serve'], env);
      expect(await p.exited).toBe(2);
      const lines = p.stderr.trimEnd().split('\n');
      expect(lines, p.stderr).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'error', msg: `ksm-scorer: invalid configuration: ${message}` });
    }
  }, 30_000);

  it("client options before the command, as in `ksm-scorer --target H:P score ...`, are the command's", async () => {
    const free = createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const nowhere = `127.0.0.1:${(free.address() as AddressInfo).port}`;
    await new Promise((resolve) => free.close(resolve));
    const p = run(['--target', nowhere, '--timeout', '2', 'score', '--os-type', 'rhel_8x64']);
    expect(await p.exited).toBe(1);
    // The call was made, to that target: nothing listens there.
    expect(p.stderr).toContain(`running at ${nowhere}?`);
    const eq = run([`--target=${nowhere}`, 'health', '--timeout', '2']);
    expect(await eq.exited).toBe(1);
    expect(eq.stderr).toContain(`running at ${nowhere}?`);
    const help = run(['--target', nowhere, '--help']);
    expect(await help.exited).toBe(0);
    expect(help.stdout).toMatch(/^usage:\n[^]*may\nalso come before COMMAND: ksm-scorer --target HOST:PORT score \.\.\.\n$/);
  });

  it('serve runs on the embedded simulator, score prints a table, SIGTERM stops it cleanly', async () => {
    const { server, port } = await serveOnSimulator(run, 12, 400);

    const table = run([
      'score',
      '--target',
      `127.0.0.1:${port}`,
      '--os-type',
      'rhel_8x64',
      '--os-version',
      'Red Hat Enterprise Linux 8.6',
      '--top',
      '5',
    ]);
    expect(await table.exited).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('Hosts for OS rhel_8x64 "Red Hat Enterprise Linux 8.6"  (score 0..100, higher = more same-OS VMs)');
    expect(lines[1]).toMatch(/^HOST\s+NAME\s+KSM CLUSTER\s+KSM HOST\s+SCORE\s+VMS\s+SAME TYPE\s+SAME VERSION$/);
    expect(
      lines.slice(2, 7).every((l) => /^[0-9a-f-]{36}\s+host-\d{4}\.example\.com\s+on\s+(on|off)\s+\d+\.\d\d\s+\d+\s+\d+\s+\d+$/.test(l)),
      lines.join('\n'),
    ).toBe(true);
    expect(lines.at(-3)).toBe('... 7 more hosts (use --top)');
    expect(lines.at(-2)).toMatch(/^KSM CLUSTER: the cluster lets KSM run/);
    expect(lines.at(-1)).toMatch(/^inventory: generation 1, 12 hosts, 400 VMs, refreshed /);

    const missing = run(['score', '--target', `127.0.0.1:${port}`, '--vm-id', '00000000-0000-4000-8000-000000000001']);
    expect(await missing.exited).toBe(1);
    expect(missing.stderr).toMatch(/NOT_FOUND: vm_id: the oVirt engine has no VM/);

    const usage = run(['score', '--target', `127.0.0.1:${port}`]);
    expect(await usage.exited).toBe(2);

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.stderr).toMatch(/"msg":"stopped"/);
  });

  it('the bin runs node with the flags serve wants (src/node-flags.ts): serve runs in the process started, no relay', async () => {
    // As installed: the file executed through its shebang (npm makes bins executable).
    chmodSync(CLI, 0o755);
    const bin = spawnProc(CLI, ['serve'], { KSM_SCORER_LISTEN: '127.0.0.1:0', KSM_SCORER_METRICS_LISTEN: 'off' });
    await waitForLog(bin, /"msg":"ksm-scorer listening"/);
    const argv = readFileSync(`/proc/${bin.child.pid}/cmdline`, 'utf8').split('\0');
    expect(argv.slice(0, 1 + NODE_FLAGS.length)).toEqual(['node', ...NODE_FLAGS]);
    expect(bin.stderr).toContain(`"pid":${bin.child.pid},`);
    bin.child.kill('SIGTERM');
    expect(await bin.exited).toBe(0);
  });

  it('`node dist/cli.js serve` (no flags) runs itself again with the flags, and relays exit codes and signals (issue 21, defect 13)', async () => {
    const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const bare = run(['serve'], { KSM_SCORER_LISTEN: '127.0.0.1:0', KSM_SCORER_METRICS_LISTEN: 'off' });
    const start = JSON.parse((await waitForLog(bare, /^.*"msg":"starting ksm-scorer".*$/m))[0]) as { pid: number; execArgv: string[] };
    // The serving process is a child of the one started, with the flags; both the log and /proc say so.
    expect(start.pid).not.toBe(bare.child.pid);
    expect(start.execArgv).toEqual(expect.arrayContaining([...NODE_FLAGS]));
    expect(cmdline(start.pid)).toEqual(expect.arrayContaining([...NODE_FLAGS]));
    expect(readFileSync(`/proc/${start.pid}/stat`, 'utf8').split(' ')[3]).toBe(String(bare.child.pid));
    await waitForLog(bare, /"msg":"ksm-scorer listening"/);
    bare.child.kill('SIGTERM');
    expect(await bare.exited).toBe(0);
    expect(bare.stderr).toMatch(/"msg":"stopped"/);
    expect(existsSync(`/proc/${start.pid}`)).toBe(false);
    // The only start-up output is the service's: one JSON object a line, no line from the relay.
    for (const line of bare.stderr.trimEnd().split('\n')) expect(JSON.parse(line)).toMatchObject({ pid: start.pid });

    // Exit codes come through: a bad configuration is exit 2, as with the flags given.
    const bad = run(['serve'], { KSM_SCORER_REFRESH_SECONDS: 'often' });
    expect(await bad.exited).toBe(2);
    expect(bad.stderr.trimEnd().split('\n')).toHaveLength(1);

    // The service killed by a signal: the process started dies of the same signal.
    const killed = run(['serve'], { KSM_SCORER_LISTEN: '127.0.0.1:0', KSM_SCORER_METRICS_LISTEN: 'off' });
    const killedPid = (JSON.parse((await waitForLog(killed, /^.*"msg":"starting ksm-scorer".*$/m))[0]) as { pid: number }).pid;
    process.kill(killedPid, 'SIGKILL');
    await killed.exited;
    expect(killed.child.signalCode).toBe('SIGKILL');

    // The process started killed with SIGKILL (no relaying then): the service stops by itself, not left behind.
    const orphan = run(['serve'], { KSM_SCORER_LISTEN: '127.0.0.1:0', KSM_SCORER_METRICS_LISTEN: 'off' });
    const orphanPid = (JSON.parse((await waitForLog(orphan, /^.*"msg":"starting ksm-scorer".*$/m))[0]) as { pid: number }).pid;
    await waitForLog(orphan, /"msg":"ksm-scorer listening"/);
    orphan.child.kill('SIGKILL');
    await orphan.exited;
    for (let i = 0; i < 250 && existsSync(`/proc/${orphanPid}`); i++) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(`/proc/${orphanPid}`)).toBe(false);
  });

  it('SIGTERM while serve is still starting stops it cleanly once started (exit 0), instead of killing it', async () => {
    const p = run(['serve'], { KSM_SCORER_LISTEN: '127.0.0.1:0', KSM_SCORER_METRICS_LISTEN: 'off' });
    await waitForLog(p, /"msg":"starting ksm-scorer"/);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.stderr).toMatch(/"msg":"signal received"/);
  });

  it('a listen port already in use: one line naming KSM_SCORER_LISTEN, exit 2, before the simulator starts', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const address = `127.0.0.1:${(taken.address() as AddressInfo).port}`;
      const p = run(['serve'], { KSM_SCORER_LISTEN: address });
      expect(await p.exited).toBe(2);
      // One line (issue 21: the "starting" line with the whole configuration, and the node-flags
      // warning, came first): started as `node dist/cli.js serve`, without the bin's flags.
      expect(p.stderr.trimEnd().split('\n'), p.stderr).toHaveLength(1);
      const last = (text: string) => JSON.parse(text.trimEnd().split('\n').at(-1)!) as { level: string; msg: string };
      expect(last(p.stderr)).toMatchObject({
        level: 'error',
        msg: `ksm-scorer: invalid configuration: KSM_SCORER_LISTEN: ${address} is already in use by another process (pick another port, or stop that process)`,
      });

      // The engine's XML-RPC listener is checked the same way.
      const proxy = run(['serve'], { KSM_SCORER_LISTEN: '127.0.0.1:0', KSM_SCORER_OVIRT_PROXY_LISTEN: address });
      expect(await proxy.exited).toBe(2);
      expect(proxy.stderr.trimEnd().split('\n'), proxy.stderr).toHaveLength(1);
      expect(last(proxy.stderr).msg).toBe(
        `ksm-scorer: invalid configuration: KSM_SCORER_OVIRT_PROXY_LISTEN: ${address} is already in use by another process (pick another port, or stop that process)`,
      );
      expect(proxy.stderr).not.toMatch(/SIMULATED/);

      // And the metrics listener.
      const metrics = run(['serve'], { KSM_SCORER_LISTEN: '127.0.0.1:0', KSM_SCORER_METRICS_LISTEN: address });
      expect(await metrics.exited).toBe(2);
      expect(metrics.stderr.trimEnd().split('\n'), metrics.stderr).toHaveLength(1);
      expect(last(metrics.stderr).msg).toBe(
        `ksm-scorer: invalid configuration: KSM_SCORER_METRICS_LISTEN: ${address} is already in use by another process (pick another port, or stop that process)`,
      );
      expect(metrics.stderr).not.toMatch(/SIMULATED/);
    } finally {
      taken.close();
    }
  });

  it('--os-version with --vm-id is a usage error (the VM has its own OS); the help says what omitting --os-version means', async () => {
    const p = run(['score', '--vm-id', '00000000-0000-4000-8000-000000000001', '--os-version', '8.6']);
    expect(await p.exited).toBe(2);
    expect(p.stderr).toBe(
      'ksm-scorer score: --os-version goes with --os-type; a VM given by --vm-id is scored as the OS it has (see ksm-scorer score --help)\n',
    );
    const help = run(['score', '--help']);
    expect(await help.exited).toBe(0);
    expect(help.stdout).toMatch(/without --os-version, the version is "", which matches VMs whose version is unknown/);
  });

  it('npm start before a build says what to run instead of a MODULE_NOT_FOUND stack', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ksm-unbuilt-'));
    try {
      cpSync(join(__dirname, '..', 'package.json'), join(dir, 'package.json'));
      const p = spawnProc('npm', ['start', '--silent'], { npm_config_update_notifier: 'false' }, dir);
      expect(await p.exited).not.toBe(0);
      expect(p.stderr).toContain('ksm-scorer is not built: run `make run` (or `make build`, then `npm start`)');
      expect(p.stderr).not.toMatch(/MODULE_NOT_FOUND|at Module/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with the engine refusing connections, the log names the engine URL and the client is pointed to the log', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/ovirt-engine/api`;
    await new Promise((resolve) => closed.close(resolve));
    const server = run(['serve'], {
      OVIRT_URL: url,
      OVIRT_USERNAME: 'admin@internal',
      OVIRT_PASSWORD: 'x',
      KSM_SCORER_LISTEN: '127.0.0.1:0',
    });
    const port = (await waitForLog(server, /"address":"127\.0\.0\.1:(\d+)".*"msg":"ksm-scorer listening"/))[1]!;
    const [line] = await waitForLog(server, /.*"msg":"engine sync failed.*/);
    expect(line).toMatch(/"msg":"engine sync failed: no inventory has loaded yet; retrying with backoff"/);
    expect(line).toContain(`the oVirt engine at ${url} could not be reached`);
    expect(server.stderr).not.toMatch(/last good inventory/);

    const health = run(['health', '--target', `127.0.0.1:${port}`]);
    expect(await health.exited).toBe(1);
    expect(health.stdout).toBe('NOT_SERVING\n');

    const score = run(['score', '--target', `127.0.0.1:${port}`, '--os-type', 'other']);
    expect(await score.exited).toBe(1);
    expect(score.stderr).toBe(
      'ksm-scorer score: UNAVAILABLE: no inventory has loaded yet: the oVirt engine could not be read (the service log says why); try again later\n',
    );
  });

  describe('against a real engine URL', () => {
    let sim: SimulatedEngine;
    afterEach(async () => sim.stop());

    it('never writes the password to its logs, even when the login fails', async () => {
      sim = await startSimulator();
      const secret = 'Sup3r-Secret-Passw0rd';
      const p = run(['serve'], {
        OVIRT_URL: sim.url,
        OVIRT_USERNAME: sim.username,
        OVIRT_PASSWORD: secret,
        KSM_SCORER_LISTEN: '127.0.0.1:0',
        KSM_SCORER_METRICS_LISTEN: '127.0.0.1:0',
        KSM_SCORER_LOG_LEVEL: 'debug',
      });
      await waitForLog(p, /"code":"engine_auth".*"msg":"engine sync failed/);
      p.child.kill('SIGTERM');
      await p.exited;
      expect(p.stderr).toMatch(/"password":"<redacted>"/);
      expect(p.stderr).not.toContain(secret);
    });
  });
});

describe('ksm-scorer client commands against a served simulator', () => {
  let server: Proc;
  let target: string;
  let hosts: { id: string; name: string; cluster: string; ksm: string; hostKsm: string }[];
  const client = (args: string[], stdin?: string) => {
    const p = spawnProc(process.execPath, [CLI, ...args], { KSM_SCORER_TARGET: target }, undefined, stdin);
    return p.exited.then((code) => ({ code, stdout: p.stdout, stderr: p.stderr }));
  };

  beforeAll(async () => {
    // 45 hosts: clusters Default (20), cluster-2 (20) and cluster-3 (5, KSM off)
    const served = await serveOnSimulator((args, env) => spawnProc(process.execPath, [CLI, ...args], env), 45, 600);
    server = served.server;
    target = `127.0.0.1:${served.port}`;
    const listed = await client(['hosts']);
    if (listed.code !== 0) throw new Error(`ksm-scorer hosts exited with ${listed.code}: ${listed.stderr}`);
    hosts = listed.stdout
      .trimEnd()
      .split('\n')
      .slice(1, -2)
      .map((l) => l.split(/\s+/))
      .map(([id, name, cluster, , , ksm, hostKsm]) => ({ id: id!, name: name!, cluster: cluster!, ksm: ksm!, hostKsm: hostKsm! }));
  });
  afterAll(async () => {
    server.child.kill('SIGTERM');
    await server.exited;
  });

  it('health prints SERVING, exit 0', async () => {
    expect(await client(['health'])).toEqual({ code: 0, stdout: 'SERVING\n', stderr: '' });
    expect((await client(['health', '--service', 'ksmscorer.v1.HostScorerService'])).stdout).toBe('SERVING\n');
  });

  it('hosts lists every host with its name, cluster, status, VMs and KSM', async () => {
    expect(hosts).toHaveLength(45);
    expect(hosts[0]).toMatchObject({ name: 'host-0001.example.com', cluster: 'Default', ksm: 'on' });
    expect(hosts.filter((h) => h.ksm === 'off').map((h) => h.cluster)).toEqual(Array(5).fill('cluster-3'));
    // The host's own KSM: on only where its cluster lets it run, and there on some hosts (the engine's MOM decides).
    expect(hosts.filter((h) => h.hostKsm === 'on').every((h) => h.ksm === 'on')).toBe(true);
    expect(new Set(hosts.filter((h) => h.ksm === 'on').map((h) => h.hostKsm))).toEqual(new Set(['on', 'off']));
    const json = JSON.parse((await client(['hosts', '--json'])).stdout) as { hosts: { status: string; vm_count: number }[] };
    expect(json.hosts.every((h) => h.status === 'up')).toBe(true);
    expect(json.hosts.reduce((n, h) => n + h.vm_count, 0)).toBeGreaterThan(0);
  });

  it('os lists the OS identities with their counts; --json as answered', async () => {
    const { code, stdout } = await client(['os']);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TYPE\s+VERSION\s+VMS\s+RUNNING\s+HOSTS$/);
    expect(lines).toContainEqual(expect.stringMatching(/^rhel_8x64\s+Red Hat Enterprise Linux 8\.6\s+\d+\s+\d+\s+\d+$/));
    expect(lines).toContainEqual(expect.stringMatching(/^other\s+-\s+\d+\s+\d+\s+\d+$/));
    expect(lines.at(-1)).toMatch(/^inventory: generation \d+, 45 hosts, 600 VMs/);
    const json = JSON.parse((await client(['os', '--json'])).stdout) as { operating_systems: { vm_count: number }[] };
    expect(json.operating_systems.reduce((n, u) => n + u.vm_count, 0)).toBe(600);
  });

  it('vms lists the VMs of one host, to score one by --vm-id; the table names its host', async () => {
    const host = hosts[2]!;
    const { code, stdout } = await client(['vms', '--host', host.id, '--max', '3']);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^VM\s+HOST\s+TYPE\s+VERSION$/);
    expect(lines.slice(1, 4).every((l) => l.split(/\s+/)[1] === host.id)).toBe(true);
    expect(lines[4]).toMatch(
      new RegExp(`^3 of \\d+ VMs running on ${host.id} \\(use --max, up to 1000\\); score one: ksm-scorer score --vm-id VM$`),
    );
    const vmId = lines[1]!.split(/\s+/)[0]!;

    const scored = await client(['score', '--vm-id', vmId, '--top', '3']);
    expect(scored.code).toBe(0);
    const table = scored.stdout.split('\n');
    expect(table[0]).toMatch(new RegExp(`^Hosts for VM ${vmId}, scored as [a-z0-9_]+( ".+"|, no version)  \\(score 0\\.\\.100`));
    const first = table[2]!.split(/\s+/);
    expect(hosts.find((h) => h.id === first[0])?.name).toBe(first[1]);
    const json = JSON.parse((await client(['score', '--vm-id', vmId, '--json'])).stdout) as {
      scored_os: { type: string };
      scores: unknown[];
    };
    expect(json.scores).toHaveLength(45);
    expect(table[0]).toContain(json.scored_os.type);
  });

  it('score marks hosts whose cluster runs no KSM', async () => {
    const offHosts = hosts.filter((h) => h.ksm === 'off');
    const { code, stdout } = await client(['score', '--os-type', 'rhel_9x64', ...offHosts.flatMap((h) => ['--host', h.id])]);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines.slice(2, 7).every((l) => / off +off /.test(l))).toBe(true);
    expect(lines).toContain("KSM CLUSTER off: the host's cluster does not run KSM, so same-OS placement saves no memory there");
  });

  it('score with an OS type (or version) no VM has still answers, and warns on stderr with the closest known ones', async () => {
    const typo = await client(['score', '--os-type', 'rhel8', '--top', '1']);
    expect(typo.code).toBe(0);
    expect(typo.stdout).toMatch(/^Hosts for OS rhel8, no version/);
    expect(typo.stderr).toBe(
      'ksm-scorer score: warning: no VM in the inventory has OS type "rhel8", so every host scores 0; closest known types: rhel_8x64, rhel_7x64, rhel_9x64 (`ksm-scorer os` lists them all)\n',
    );
    const version = await client(['score', '--os-type', 'rhel_8x64', '--os-version', '8.6', '--top', '1']);
    expect(version.code).toBe(0);
    expect(version.stderr).toMatch(
      /^ksm-scorer score: warning: no rhel_8x64 VM in the inventory has version "8\.6"; closest known: "Red Hat Enterprise Linux 8\.6", /,
    );
    const known = await client(['score', '--os-type', 'rhel_8x64', '--top', '1']);
    expect(known.stderr).toBe('');
  });

  it('batch: JSON lines of requests in (a file or stdin), one JSON line per request out, in order, across chunks', async () => {
    const vms = JSON.parse((await client(['vms', '--max', '3', '--json'])).stdout) as { vms: { id: string }[] };
    const dir = mkdtempSync(join(tmpdir(), 'ksm-batch-'));
    const file = join(dir, 'requests.jsonl');
    const lines = [
      JSON.stringify({ vm_id: vms.vms[0]!.id }),
      '',
      JSON.stringify({ os: { type: 'rhel_9x64' }, hostIds: [hosts[0]!.id, hosts[1]!.id] }),
      JSON.stringify({ vm_id: '00000000-0000-4000-8000-000000000001' }),
      JSON.stringify({ vm_id: 'web-01' }),
      JSON.stringify({ vm_id: vms.vms[1]!.id, host_ids: [hosts[3]!.id] }),
    ];
    writeFileSync(file, `${lines.join('\n')}\n`);
    try {
      for (const args of [
        ['batch', file, '--chunk', '2'],
        ['batch', '-'],
      ]) {
        const { code, stdout, stderr } = await client(args, args[1] === '-' ? readFileSync(file, 'utf8') : undefined);
        expect(code, stderr).toBe(0);
        const out = stdout
          .trimEnd()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, any>);
        expect(out.map((o) => o.line)).toEqual([1, 3, 4, 5, 6]);
        expect(out[0]!.scores).toHaveLength(45);
        expect(out[0]!.scored_os.type).toBeTruthy();
        expect(out[1]!.scores.map((s: { host_id: string }) => s.host_id)).toEqual([hosts[0]!.id, hosts[1]!.id]);
        expect(out[1]!.scored_os).toEqual({ type: 'rhel_9x64', version: '' });
        expect(out[2]!.error).toEqual({
          code: 5,
          status: 'NOT_FOUND',
          message: 'vm_id: the oVirt engine has no VM 00000000-0000-4000-8000-000000000001',
        });
        expect(out[3]!.error).toEqual({ code: 3, status: 'INVALID_ARGUMENT', message: 'vm_id: not a UUID: "web-01"' });
        expect(out[4]!.scores).toHaveLength(1);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('output larger than a pipe holds reaches a slow reader whole (the process does not exit before stdout drains)', async () => {
    // 300 whole-inventory answers, about 1.4 MB of JSON lines, into a pipe (64 KiB) read only after a second, as `| jq` might.
    const input = `${Array(300)
      .fill(JSON.stringify({ os: { type: 'rhel_9x64' } }))
      .join('\n')}\n`;
    const p = spawnProc(
      'sh',
      ['-c', `"${process.execPath}" "${CLI}" batch - | (sleep 1; cat)`],
      { KSM_SCORER_TARGET: target },
      undefined,
      input,
    );
    expect(await p.exited, p.stderr).toBe(0);
    const lines = p.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(300);
    expect(lines.every((l) => (JSON.parse(l) as { scores: unknown[] }).scores.length === 45)).toBe(true);
  });

  it('batch refuses a line that is not a request before any call, naming the line', async () => {
    for (const [input, message] of [
      ['{"vm_id": "x"}\nnot json\n', '-:2: not JSON'],
      ['[1, 2]\n', '-:1: not a JSON object'],
      ['{"vmid": "x"}\n', '-:1: unknown field "vmid" (a ScoreHostsRequest has vm_id, os, host_ids)'],
      ['{"os": {"type": "a", "flavour": "b"}}\n', '-:1: unknown field os.flavour (an OperatingSystem has type, version)'],
      ['{"vm_id": "x", "os": {"type": "a"}}\n', '-:1: set either vm_id or os, not both'],
      ['{"host_ids": "a"}\n', '-:1: host_ids must be a list of strings'],
    ] as const) {
      const { code, stdout, stderr } = await client(['batch', '-'], input);
      expect(code, input).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toBe(`ksm-scorer batch: ${message} (see ksm-scorer batch --help)\n`);
    }
    expect(await client(['batch', '-'], '\n\n')).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('a call that fails is exit 1 with the status; nothing listening at the target says so', async () => {
    const free = createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const nowhere = `127.0.0.1:${(free.address() as AddressInfo).port}`;
    await new Promise((resolve) => free.close(resolve));
    for (const command of [['health'], ['hosts'], ['score', '--os-type', 'other']]) {
      const { code, stderr } = await client([...command, '--target', nowhere, '--timeout', '3']);
      expect(code, command.join(' ')).toBe(1);
      expect(stderr).toMatch(
        new RegExp(
          `^ksm-scorer ${command[0]}: UNAVAILABLE: .*\\(is \`ksm-scorer serve\` running at ${nowhere.replace(/\./g, '\\.')}\\? set --target or \\$KSM_SCORER_TARGET\\)\\n$`,
        ),
      );
    }
  });
});

describe('client output into a closed pipe', () => {
  afterEach(killAll);

  it('`batch FILE | head -c 20`: the closed stdout ends batch quietly, not with an unhandled EPIPE error event and a stack trace', async () => {
    const run = (args: string[], env: Record<string, string> = {}) => spawnProc(process.execPath, [CLI, ...args], env);
    const { port } = await serveOnSimulator(run, 5, 20);
    const dir = mkdtempSync(join(tmpdir(), 'ksm-batch-epipe-'));
    try {
      const file = join(dir, 'lines.jsonl');
      writeFileSync(file, `${JSON.stringify({ os: { type: 'rhel_9x64', version: '' } })}\n`.repeat(3_000));
      const batch = run(['batch', file, '--target', `127.0.0.1:${port}`]);
      // The reader takes the first bytes and goes away, as `head -c 20` does.
      await new Promise<void>((resolve) => batch.child.stdout!.once('data', () => resolve()));
      batch.child.stdout!.destroy();
      await batch.exited;
      expect(batch.stderr).not.toContain("Unhandled 'error' event");
      expect(batch.stderr).not.toMatch(/^\s+at /m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
