// The layering of src/, as the architecture rules oxlint checks (make lint): a module may import
// its own layer and the ones below, never one above; scheduler-proxy/ and server/ import nothing
// of each other. Cycles are import/no-cycle's job. `node scripts/layers.mjs` writes the rules into
// .oxlintrc.json (with the tests' exceptions); `--check` fails when they are out of date.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/** Lowest first. A name is a folder of src/ or a file at src/'s root (without .ts). */
export const LAYERS = [
  ['generated', 'errors', 'abortable', 'backoff', 'concurrency-limit', 'systemd', 'log', 'stop-signals', 'config'],
  ['net', 'metrics', 'ovirt', 'contract'],
  ['scoring'],
  ['inventory'],
  ['recording', 'simulator', 'engine'],
  ['fast-path', 'engine-view'],
  ['server', 'scheduler-proxy'],
  ['endpoints'],
  ['cluster', 'service', 'node-flags'],
  ['cli'],
];
/** Pairs in one layer that must not import each other. */
const APART = [['server', 'scheduler-proxy']];

const FILE = new URL('../.oxlintrc.json', import.meta.url);
const SRC = new URL('../src/', import.meta.url);
const entries = readdirSync(SRC, { withFileTypes: true });
const folders = new Set(entries.filter((e) => e.isDirectory()).map((e) => e.name));
// Every folder and root module of src/ has a layer: one the table does not place would be unchecked.
const units = [...folders, ...entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => e.name.slice(0, -3))];
const placed = new Set(LAYERS.flat());
const unplaced = units.filter((u) => !placed.has(u));
if (unplaced.length > 0) {
  console.error(`scripts/layers.mjs: src/ has ${unplaced.join(', ')}, in no layer; add each to LAYERS`);
  process.exit(1);
}

/** Import specifiers that reach `unit`, from a file in a folder of src/ (`..`) or at its root (`.`). */
const reach = (unit, from) => (folders.has(unit) ? [`${from}/${unit}/*`, `${from}/${unit}`] : [`${from}/${unit}`, `${from}/${unit}.js`]);

function overrides() {
  const out = [];
  LAYERS.forEach((layer, i) => {
    const above = LAYERS.slice(i + 1).flat();
    for (const unit of layer) {
      const apart = APART.flatMap(([a, b]) => (a === unit ? [b] : b === unit ? [a] : []));
      const banned = [...above, ...apart];
      if (banned.length === 0) continue;
      const from = folders.has(unit) ? '..' : '.';
      out.push({
        files: [folders.has(unit) ? `src/${unit}/**` : `src/${unit}.ts`],
        rules: {
          'no-restricted-imports': [
            'error',
            {
              patterns: [
                {
                  group: banned.flatMap((u) => reach(u, from)),
                  message: `${unit} is in layer ${i} of scripts/layers.mjs: it imports nothing of a higher layer${apart.length ? ` nor of ${apart.join(', ')}` : ''}`,
                },
              ],
            },
          ],
        },
      });
    }
  });
  return out;
}

const config = JSON.parse(readFileSync(FILE, 'utf8'));
// Tests read JSON logs, metrics and raw answers as untyped values on purpose: the no-unsafe-* rules stay in src/.
// A test helper named expect... asserts (throws on a mismatch, as expectGrpcError and expectFault do), so a
// test that calls one has an assertion; the list replaces vitest's default, which it keeps.
const TESTS = {
  files: ['test/**', 'scripts/**'],
  rules: {
    ...Object.fromEntries(
      ['no-unsafe-argument', 'no-unsafe-assignment', 'no-unsafe-call', 'no-unsafe-member-access', 'no-unsafe-return'].map((r) => [
        `typescript/${r}`,
        'off',
      ]),
    ),
    'vitest/expect-expect': ['error', { assertFunctionNames: ['expect', 'expectTypeOf', 'assert', 'assertType', 'expect*'] }],
  },
};
const next = `${JSON.stringify({ ...config, overrides: [...overrides(), TESTS] }, null, 2)}\n`;
if (process.argv.includes('--check')) {
  if (readFileSync(FILE, 'utf8') !== next) {
    console.error('.oxlintrc.json: the layer rules are out of date; run node scripts/layers.mjs');
    process.exit(1);
  }
} else writeFileSync(FILE, next);
