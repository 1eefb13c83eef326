/**
 * The layering rules scripts/layers.mjs writes into .oxlintrc.json, run by oxlint over a scratch tree laid out as src/:
 * an import the layering forbids must fail the lint whatever way it is written.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '../..');
const OXLINT = join(ROOT, 'node_modules/.bin/oxlint');
const scratch = mkdtempSync(join(tmpdir(), 'ksm-layers-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The project's layer rules and cycle rule alone (no type-aware rules: the scratch files have no tsconfig). */
function writeConfig(dir: string): void {
  const config = JSON.parse(readFileSync(join(ROOT, '.oxlintrc.json'), 'utf8'));
  const { overrides } = config;
  writeFileSync(
    join(dir, '.oxlintrc.json'),
    JSON.stringify({ plugins: ['import'], options: { denyWarnings: true }, rules: { 'import/no-cycle': 'error' }, overrides }),
  );
}

let n = 0;
/** oxlint's findings over a scratch src/ holding `files` (path -> text); every imported module exists. */
async function lint(files: Record<string, string>): Promise<{ code: number; out: string }> {
  const dir = join(scratch, String(n++));
  mkdirSync(dir);
  writeConfig(dir);
  const all = {
    'src/scheduler-proxy/handlers.ts': 'export const weight = 1;\n',
    'src/inventory/inventory.ts': 'export const inventory = 1;\n',
    'src/server/server.ts': 'export const server = 1;\n',
    ...files,
  };
  for (const [path, text] of Object.entries(all)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return new Promise((done) => {
    execFile(OXLINT, ['src'], { cwd: dir, timeout: 30_000 }, (err, stdout, stderr) => {
      done({ code: err ? Number(err.code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

describe('layering rules (scripts/layers.mjs -> .oxlintrc.json)', () => {
  it('server importing scheduler-proxy is an error (the plain spelling)', async () => {
    const r = await lint({ 'src/server/status.ts': "import { weight } from '../scheduler-proxy/handlers';\nexport const w = weight;\n" });
    expect(r.out).toMatch(/no-restricted-imports/);
    expect(r.code).not.toBe(0);
  });

  // Same module, written with a leading ./ or a detour: TypeScript and Node resolve it alike.
  for (const spec of ['./../scheduler-proxy/handlers', '../server/../scheduler-proxy/handlers', '../../src/scheduler-proxy/handlers']) {
    it(`server importing scheduler-proxy as '${spec}' is an error`, async () => {
      const r = await lint({ 'src/server/status.ts': `import { weight } from '${spec}';\nexport const w = weight;\n` });
      expect(r.code, r.out).not.toBe(0);
    });
  }

  it('server requiring scheduler-proxy (CommonJS require, which the build emits) is an error', async () => {
    const r = await lint({ 'src/server/status.ts': "export const h = (): unknown => require('../scheduler-proxy/handlers');\n" });
    expect(r.code, r.out).not.toBe(0);
  });

  it("a type taken through import('...') from a higher layer is an error, as an `import type` is", async () => {
    const r = await lint({ 'src/scoring/score.ts': "export type I = typeof import('../inventory/inventory').inventory;\n" });
    expect(r.code, r.out).not.toBe(0);
  });

  it('a file in a subfolder of scoring/ importing inventory/ is an error, as one in scoring/ is', async () => {
    const r = await lint({
      'src/scoring/rules/rank.ts': "import { inventory } from '../../inventory/inventory';\nexport const i = inventory;\n",
    });
    expect(r.code, r.out).not.toBe(0);
  });
});
