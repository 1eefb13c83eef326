/**
 * scripts/architecture.mjs (make lint) over a scratch tree laid out as src/: an import the layering
 * forbids fails it whatever way it is written, as do a cycle, a module in no layer and a long file.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const SCRIPT = resolve(__dirname, '../../scripts/architecture.mjs');
const scratch = mkdtempSync(join(tmpdir(), 'ksm-architecture-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let n = 0;
/** The script's verdict on a scratch src/ holding `files` (path below src/ -> text) besides three modules every case has. */
async function check(files: Record<string, string>): Promise<{ code: number; out: string }> {
  const src = join(scratch, String(n++), 'src');
  const all = {
    'scheduler-proxy/handlers.ts': 'export const weight = 1;\n',
    'inventory/inventory.ts': 'export const inventory = 1;\n',
    'server/server.ts': 'export const server = 1;\n',
    ...files,
  };
  for (const [path, text] of Object.entries(all)) {
    mkdirSync(dirname(join(src, path)), { recursive: true });
    writeFileSync(join(src, path), text);
  }
  return new Promise((done) => {
    execFile(process.execPath, [SCRIPT, '--src', src], { timeout: 30_000 }, (err, stdout, stderr) => {
      done({ code: err ? Number(err.code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

describe('architecture rules (scripts/architecture.mjs)', () => {
  it('a tree that keeps them passes: downward imports, types, the same module twice', async () => {
    const r = await check({
      'server/status.ts':
        "import { inventory } from '../inventory/inventory';\nimport type { I } from './types';\nexport const s = inventory;\n",
      'server/types.ts': "export type I = typeof import('../inventory/inventory').inventory;\n",
      'scoring/score.ts': '// import { inventory } from "../inventory/inventory": a comment is no import\nexport const score = 1;\n',
    });
    expect(r.code, r.out).toBe(0);
  });

  it('server importing scheduler-proxy is an error (the plain spelling)', async () => {
    const r = await check({ 'server/status.ts': "import { weight } from '../scheduler-proxy/handlers';\nexport const w = weight;\n" });
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(
      /src\/server\/status\.ts: imports '..\/scheduler-proxy\/handlers': server and scheduler-proxy import nothing of each other/,
    );
  });

  // The same module, written with a leading ./, a detour or through src/ itself: TypeScript and Node resolve it alike.
  for (const spec of ['./../scheduler-proxy/handlers', '../server/../scheduler-proxy/handlers', '../../src/scheduler-proxy/handlers.js']) {
    it(`server importing scheduler-proxy as '${spec}' is an error`, async () => {
      const r = await check({ 'server/status.ts': `import { weight } from '${spec}';\nexport const w = weight;\n` });
      expect(r.code, r.out).toBe(1);
      expect(r.out).toMatch(/import nothing of each other/);
    });
  }

  it('server requiring scheduler-proxy (CommonJS require, which the build emits) is an error', async () => {
    const r = await check({ 'server/status.ts': "export const h = (): unknown => require('../scheduler-proxy/handlers');\n" });
    expect(r.code, r.out).toBe(1);
  });

  it("a type taken through import('...') from a higher layer is an error, as an `import type` is", async () => {
    const r = await check({ 'scoring/score.ts': "export type I = typeof import('../inventory/inventory').inventory;\n" });
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(/src\/scoring\/score\.ts: imports '..\/inventory\/inventory' \(inventory, layer 3\) from scoring, layer 2/);
  });

  it('a file in a subfolder of scoring/ importing inventory/ is an error, as one in scoring/ is', async () => {
    const r = await check({
      'scoring/rules/rank.ts': "import { inventory } from '../../inventory/inventory';\nexport const i = inventory;\n",
    });
    expect(r.code, r.out).toBe(1);
  });

  it('a cycle made only of type queries is an error', async () => {
    const r = await check({
      'scoring/a.ts': "export type A = typeof import('./b').b;\nexport const a = 1;\n",
      'scoring/b.ts': "export type B = typeof import('./a').a;\nexport const b = 1;\n",
    });
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(/import cycle: scoring\/a\.ts <-> scoring\/b\.ts/);
  });

  it('a folder or root module in no layer is an error (it would be unchecked)', async () => {
    const r = await check({
      'reports/daily.ts': "import { server } from '../server/server';\nexport const s = server;\n",
      'report.ts': 'export const r = 1;\n',
    });
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(/src\/reports: in no layer/);
    expect(r.out).toMatch(/src\/report\.ts: in no layer/);
  });

  it('a source file over 300 lines is an error', async () => {
    const r = await check({ 'scoring/long.ts': 'export const x = 1;\n'.repeat(301) });
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(/src\/scoring\/long\.ts: 301 lines, more than 300/);
  });
});
