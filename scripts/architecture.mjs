// The architecture of src/, checked by `make lint` (node scripts/architecture.mjs [--src DIR]):
// - every folder and root module of src/ sits in a layer of LAYERS, and a module imports only its
//   own layer and the ones below; scheduler-proxy/ and server/ import nothing of each other;
// - no import cycle between modules;
// - no source file over MAX_LINES lines (one concept per file).
// Imports are read as the compiler resolves them: every relative specifier of `import`/`export ...
// from`, `import '...'`, `import('...')` (calls and type queries) and `require('...')`, resolved to
// the file it names, whatever way it is spelled (`./../x`, `../y/../x`, from any depth).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

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
/** Most lines a source file may have (generated code aside). */
const MAX_LINES = 300;

const at = process.argv.indexOf('--src');
const SRC = resolve(at > 0 ? process.argv[at + 1] : new URL('../src', import.meta.url).pathname);
const layerOf = new Map(LAYERS.flatMap((units, i) => units.map((u) => [u, i])));
const problems = [];

/** Every .ts file below `dir`. */
const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
/** The folder or root module of src/ a path belongs to; undefined outside src/. */
function unitOf(path) {
  const rel = relative(SRC, path);
  if (rel.startsWith('..') || rel === '') return undefined;
  const [first, ...rest] = rel.split(sep);
  return rest.length > 0 ? first : first.replace(/\.(d\.)?[cm]?[jt]s$/, '');
}
/** The file a relative specifier names, as TypeScript resolves it (x.js -> x.ts, a folder -> its index). */
function resolveSpecifier(from, spec) {
  const base = resolve(dirname(from), spec).replace(/\.[cm]?js$/, '');
  for (const candidate of [`${base}.ts`, `${base}.d.ts`, join(base, 'index.ts')]) if (existsSync(candidate)) return candidate;
  return existsSync(base) && statSync(base).isFile() ? base : `${base}.ts`;
}
/** Relative specifiers a source imports, in any form; comments are dropped first so they cannot count. */
function specifiers(text) {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\w])\/\/.*$/gm, '$1');
  const found = [];
  for (const re of [
    /\bfrom\s*['"]([^'"\n]+)['"]/g,
    /\bimport\s*['"]([^'"\n]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"\n]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"\n]+)['"]\s*\)/g,
  ]) {
    for (const m of code.matchAll(re)) if (m[1].startsWith('.')) found.push(m[1]);
  }
  return found;
}

// Every unit has a layer: one the table does not place would be unchecked.
const entries = readdirSync(SRC, { withFileTypes: true });
for (const e of entries) {
  const unit = e.isDirectory() ? e.name : e.name.endsWith('.ts') ? e.name.slice(0, -3) : undefined;
  if (unit !== undefined && !layerOf.has(unit)) problems.push(`src/${e.name}: in no layer of scripts/architecture.mjs (LAYERS)`);
}

const files = walk(SRC);
const graph = new Map();
for (const file of files) {
  const name = relative(SRC, file);
  const text = readFileSync(file, 'utf8');
  const unit = unitOf(file);
  if (unit !== 'generated') {
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > MAX_LINES) problems.push(`src/${name}: ${lines} lines, more than ${MAX_LINES} (one concept per file)`);
  }
  const targets = new Set();
  for (const spec of specifiers(text)) {
    const target = resolveSpecifier(file, spec);
    targets.add(target);
    const to = unitOf(target);
    if (to === undefined) {
      problems.push(`src/${name}: imports '${spec}', outside src/`);
      continue;
    }
    if (to === unit || !layerOf.has(unit) || !layerOf.has(to)) continue;
    if (layerOf.get(to) > layerOf.get(unit)) {
      problems.push(
        `src/${name}: imports '${spec}' (${to}, layer ${layerOf.get(to)}) from ${unit}, layer ${layerOf.get(unit)}: nothing imports upward`,
      );
    } else if (APART.some(([a, b]) => (a === unit && b === to) || (b === unit && a === to))) {
      problems.push(`src/${name}: imports '${spec}': ${unit} and ${to} import nothing of each other`);
    }
  }
  graph.set(file, targets);
}

// Cycles between modules (Tarjan's strongly connected components): every edge counts, type-only ones too.
let index = 0;
const indexOf = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
function connect(v) {
  indexOf.set(v, index);
  low.set(v, index++);
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!graph.has(w)) continue;
    if (!indexOf.has(w)) {
      connect(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), indexOf.get(w)));
  }
  if (low.get(v) !== indexOf.get(v)) return;
  const component = [];
  let w;
  do {
    w = stack.pop();
    onStack.delete(w);
    component.push(relative(SRC, w));
  } while (w !== v);
  if (component.length > 1 || graph.get(v).has(v))
    problems.push(`import cycle: ${component.sort((a, b) => a.localeCompare(b)).join(' <-> ')}`);
}
for (const file of graph.keys()) if (!indexOf.has(file)) connect(file);

if (problems.length > 0) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
console.log(`architecture: ${files.length} files in ${LAYERS.length} layers, no upward import, no cycle, none over ${MAX_LINES} lines`);
