/**
 * The npm package as operators get it: `npm pack` of the built tree ships only
 * what runs, and `npm install -g` of the tarball gives a working `ksm-scorer`.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ENGINE_STATUS_PROTO, SCORER_PROTO } from '../../src/contract/proto';
import { killAll, serveOnSimulator, spawnProc } from '../processes';

const exec = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; license: string; bin: Record<string, string> };

describe('the npm package', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ksm-pack-'));
  let packed: { filename: string; files: { path: string }[] };

  beforeAll(async () => {
    // `make test` has built dist/; --ignore-scripts skips the prepack rebuild.
    const { stdout } = await exec('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, timeout: 60_000 });
    packed = (JSON.parse(stdout) as (typeof packed)[])[0]!;
  }, 90_000);
  afterEach(killAll);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('holds the compiled sources, the contract, README, LICENSE and nothing else', () => {
    const paths = packed.files.map((f) => f.path).sort();
    const extra = paths.filter((p) => !['package.json', 'README.md', 'LICENSE', `proto/${SCORER_PROTO}`, `proto/${ENGINE_STATUS_PROTO}`].includes(p) && !/^dist\/.+\.js$/.test(p));
    expect(extra).toEqual([]);
    // Every shipped module compiles a source file of today's tree: no stale output, no tests, no benchmarks, no type-only stubs.
    const orphans = paths.filter((p) => p.startsWith('dist/') && !existsSync(join(ROOT, 'src', p.slice('dist/'.length).replace(/\.js$/, '.ts'))));
    expect(orphans).toEqual([]);
    expect(paths.filter((p) => p.startsWith('dist/generated/'))).toEqual([]);
    expect(paths).toContain(pkg.bin['ksm-scorer']);
    expect(paths).toContain('dist/server/server.js');
  });

  it('a tarball `npm pack` leaves in the checkout is ignored by git, not shown as untracked', async () => {
    // git check-ignore exits 0 when a rule ignores the path, 1 when none does.
    await expect(exec('git', ['check-ignore', '--no-index', '--quiet', packed.filename], { cwd: ROOT })).resolves.toBeDefined();
  });

  it('LICENSE is the license package.json names', () => {
    expect(pkg.license).toBe('Apache-2.0');
    const text = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
    expect(text).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004/);
    expect(text).toContain('END OF TERMS AND CONDITIONS');
  });

  it('installs with npm install -g and runs: --version, --help, serve, score, SIGTERM', async () => {
    const prefix = join(dir, 'prefix');
    // Dependencies come from the npm cache `make` filled, or from the registry.
    await exec('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', join(dir, packed.filename)], { timeout: 150_000 });
    const bin = join(prefix, 'bin', 'ksm-scorer');
    const run = (args: string[], env: Record<string, string> = {}) => spawnProc(bin, args, env);

    const version = run(['--version']);
    expect(await version.exited).toBe(0);
    expect(version.stdout).toBe(`${pkg.version}\n`);
    const help = run(['--help']);
    expect(await help.exited).toBe(0);
    expect(help.stdout).toMatch(/ksm-scorer serve[^]*ksm-scorer score/);

    // The installed copy (under /tmp) can only use its own proto/ and dependencies.
    const { server, port } = await serveOnSimulator(run, 6, 120);
    const score = run(['score', '--target', `127.0.0.1:${port}`, '--os-type', 'rhel_8x64', '--json']);
    expect(await score.exited).toBe(0);
    const answer = JSON.parse(score.stdout) as { scores: { found: boolean }[]; inventory: { host_count: number; vm_count: number } };
    expect(answer.scores).toHaveLength(6);
    expect(answer.inventory).toMatchObject({ host_count: 6, vm_count: 120 });
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  }, 200_000);
});
