/**
 * The README (and docs/api.md, where its grpcurl calls went) cannot drift, nor grow past 1,500
 * words: every `sh` block that calls `ksm-scorer` or `grpcurl` is run, as
 * written, by sh against a served simulator (`ksm-scorer serve` on the default 50 hosts and
 * 1,000 VMs, as `make run` starts it), and so is the CLI equivalent named above each grpcurl
 * call. HOST_ID and VM_ID become ids the service lists, localhost:50051 its address. Where
 * grpcurl is not installed (Debian does not package it) a stand-in takes its place
 * (test/readme/grpcurl-stand-in.cjs). The one block of `make` lines is not run: `make test` is
 * this suite, and `make run` would rebuild dist/ under it; nor is the engine-config block, which
 * runs on an oVirt engine machine. The sample output is compared with what the command prints now.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListVmsResponse__Output } from '../src/generated/ksmscorer/v1/ListVmsResponse';
import { loadScorerProto } from '../src/contract/proto';
import { unary } from './helpers';
import { killAll, serveOnSimulator, spawnProc } from './processes';

const ROOT = join(__dirname, '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const API_DOC = readFileSync(join(ROOT, 'docs', 'api.md'), 'utf8');

/** The fenced blocks of a language, indented ones (in a list) included, without their indentation. */
const blocks = (lang: string, text = `${README}\n${API_DOC}`) =>
  [...text.matchAll(new RegExp(`^( *)\`\`\`${lang}\\n([^]*?)^\\1\`\`\`$`, 'gm'))].map((m) =>
    m[2]!.replace(new RegExp(`^${m[1]}`, 'gm'), ''),
  );
const runsSomething = (block: string) => /^(ksm-scorer|grpcurl) /m.test(block);

function hasGrpcurl(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v grpcurl'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('the README commands', () => {
  let dir: string;
  let target: string;
  let ids: { HOST_ID: string; VM_ID: string };
  let env: Record<string, string>;

  beforeAll(async () => {
    const { port } = await serveOnSimulator((args, e) => spawnProc(process.execPath, [CLI, ...args], e), 50, 1000);
    target = `127.0.0.1:${port}`;
    // A running VM and the host it runs on.
    const client = new (loadScorerProto().ksmscorer.v1.HostScorerService)(target, grpc.credentials.createInsecure());
    const vm = (await unary<unknown, ListVmsResponse__Output>(client, 'ListVms', { max_results: 1000 })).vms.find((v) => v.host_id !== '')!;
    client.close();
    ids = { HOST_ID: vm.host_id, VM_ID: vm.id };

    dir = mkdtempSync(join(tmpdir(), 'ksm-readme-'));
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const shim = (name: string, script: string) => {
      writeFileSync(join(bin, name), `#!/bin/sh\nexec "${process.execPath}" "${script}" "$@"\n`);
      chmodSync(join(bin, name), 0o755);
    };
    shim('ksm-scorer', CLI);
    if (!hasGrpcurl()) shim('grpcurl', join(__dirname, 'readme', 'grpcurl-stand-in.cjs'));
    env = { PATH: `${bin}:${process.env.PATH}`, KSM_SCORER_TARGET: target };
  }, 30_000);
  afterAll(async () => {
    await killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs a README block as written, with the ids and the address filled in. */
  const sh = async (block: string) => {
    const script = block.replace(/\b(HOST_ID|VM_ID)\b/g, (id) => ids[id as keyof typeof ids]).replace(/\blocalhost:50051\b/g, target);
    const p = spawnProc('sh', ['-e', '-c', script], env, dir);
    return { code: await p.exited, stdout: p.stdout, stderr: p.stderr };
  };

  it('is under 1,500 words, counted as `wc -w` counts them, everything in the file', () => {
    const words = Number(
      execFileSync('wc', ['-w', join(ROOT, 'README.md')], { encoding: 'utf8' })
        .trim()
        .split(/\s+/)[0],
    );
    expect(words).toBeGreaterThan(500);
    expect(words).toBeLessThan(1500);
  });

  it('links only to files that exist, in the README and docs/ (text moved to docs/ must not leave dead links)', () => {
    const files = [
      'README.md',
      ...readdirSync(join(ROOT, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ];
    const dead: string[] = [];
    for (const file of files) {
      for (const [, target] of readFileSync(join(ROOT, file), 'utf8').matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        if (!existsSync(join(ROOT, dirname(file), target!))) dead.push(`${file} -> ${target}`);
      }
    }
    expect(dead).toEqual([]);
  });

  it('says which Debian packages `make test` installs: those test/install-deps.sh names', () => {
    const script = readFileSync(join(__dirname, 'install-deps.sh'), 'utf8');
    const packages = new Set([...script.matchAll(/need\+=\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(/\s+/)).concat('systemd'));
    expect(packages.size).toBeGreaterThanOrEqual(7);
    for (const p of packages) expect(README, p).toContain(`\`${p}\``);
    expect(README).not.toMatch(/Nothing is needed globally/);
  });

  it("shows no commands the test does not run, but the make block and the engine machine's", () => {
    const sh = blocks('sh');
    const notRun = sh.filter((b) => !runsSomething(b));
    const commands = (b: string) =>
      b
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => l.split(/\s+#/)[0]!.trim().split(/\s+/)[0]);
    expect(notRun.map(commands)).toEqual([
      ['make', 'make'],
      ['engine-config', 'engine-config', 'systemctl'],
    ]);
    expect(sh.filter(runsSomething).length).toBeGreaterThanOrEqual(3);
  });

  it.each(
    blocks('sh')
      .filter(runsSomething)
      .map((b, i) => [i, b.split('\n')[0]!, b]),
  )(
    'block %i (%s) runs, every command exit 0',
    async (_i, _first, block) => {
      const { code, stdout, stderr } = await sh(block);
      expect(code, `${stderr}\n--- in:\n${block}`).toBe(0);
      expect(stdout.length).toBeGreaterThan(0);
      expect(stderr).toBe('');
    },
    60_000,
  );

  it('the CLI equivalent named above each grpcurl call runs too', async () => {
    const equivalents = blocks('sh')
      .flatMap((b) => b.split('\n'))
      .filter((l) => l.startsWith('# ksm-scorer '))
      .map((l) => l.slice(2));
    expect(equivalents.length).toBeGreaterThanOrEqual(7);
    const { code, stderr } = await sh(equivalents.join('\n'));
    expect(code, stderr).toBe(0);
  }, 60_000);

  it('the sample output is what the command prints (but the time of the refresh)', async () => {
    const samples = blocks('text').filter((b) => b.startsWith('$ ksm-scorer '));
    expect(samples.length).toBeGreaterThanOrEqual(1);
    for (const sample of samples) {
      const [command, ...expected] = sample.trimEnd().split('\n');
      const { code, stdout } = await sh(command!.slice(2));
      expect(code).toBe(0);
      const noTime = (lines: string[]) => lines.map((l) => l.replace(/refreshed \S+$/, 'refreshed TIME'));
      expect(noTime(stdout.trimEnd().split('\n'))).toEqual(noTime(expected));
    }
  });
});
