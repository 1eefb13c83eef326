/**
 * The contract guard: the proto passes `buf lint` (STANDARD rules), and
 * `buf breaking` (FILE rules) finds nothing against the contract as first
 * released (contract/ksmscorer-v1.binpb), while it does flag changes that
 * would break existing clients.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SCORER_PROTO } from '../../src/contract/proto';

const ROOT = join(__dirname, '..', '..');
const BUF = join(ROOT, 'node_modules', '.bin', 'buf');
const RELEASED = join(ROOT, 'contract', 'ksmscorer-v1.binpb');

function buf(args: string[], cwd = ROOT): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(BUF, args, { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

describe('the contract guard (buf)', () => {
  const copies: string[] = [];
  afterAll(() => copies.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

  /** A copy of the module (buf.yaml and proto/) with the proto passed through `edit`. */
  const editedCopy = (edit: (proto: string) => string): string => {
    const dir = mkdtempSync(join(tmpdir(), 'ksm-buf-'));
    copies.push(dir);
    cpSync(join(ROOT, 'buf.yaml'), join(dir, 'buf.yaml'));
    cpSync(join(ROOT, 'proto'), join(dir, 'proto'), { recursive: true });
    const file = join(dir, 'proto', SCORER_PROTO);
    const before = readFileSync(file, 'utf8');
    const after = edit(before);
    expect(after, 'the edit changed nothing').not.toBe(before);
    writeFileSync(file, after);
    return dir;
  };

  it('buf lint passes with the STANDARD rules', async () => {
    expect(await buf(['lint'])).toEqual({ code: 0, output: '' });
  });

  it('buf lint is not vacuous: a badly named message fails it', async () => {
    const dir = editedCopy((p) => `${p}\nmessage host_note { string text = 1; }\n`);
    const { code, output } = await buf(['lint'], dir);
    expect(code).not.toBe(0);
    expect(output).toMatch(/host_note.*PascalCase/);
  });

  it('buf breaking finds nothing against the contract as first released', async () => {
    expect(await buf(['breaking', '--against', RELEASED])).toEqual({ code: 0, output: '' });
  });

  it.each([
    ['a renumbered field', (p: string) => p.replace('uint32 vm_count = 3;', 'uint32 vm_count = 9;'), /vm_count/],
    ['a renamed field', (p: string) => p.replace('repeated string host_ids = 3;', 'repeated string hosts = 3;'), /host_ids/],
    ['a changed field type', (p: string) => p.replace('double score = 2;', 'float score = 2;'), /score/],
    ['a removed RPC', (p: string) => p.replace(/\n\s*\/\/ Scores many requests[^]*?returns \(ScoreHostsBatchResponse\);/, ''), /ScoreHostsBatch/],
  ])('buf breaking flags %s', async (_name, edit, mentions) => {
    const { code, output } = await buf(['breaking', '--against', RELEASED], editedCopy(edit));
    expect(code).not.toBe(0);
    expect(output).toMatch(mentions);
  });

  it('buf breaking lets an added field through', async () => {
    const dir = editedCopy((p) => p.replace('bool found = 6;', 'bool found = 6;\n  string host_name = 7;'));
    expect(await buf(['breaking', '--against', RELEASED], dir)).toEqual({ code: 0, output: '' });
  });
});
