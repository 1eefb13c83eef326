// `make deps-report`: for each pinned dependency, the newest version that still runs on the
// oldest Node we support (package.json engines) and the newest of all, with the Node it needs.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import semver from 'semver';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const oldestNode = semver.minVersion(pkg.engines.node).version;
const pinned = { ...pkg.dependencies, ...pkg.devDependencies };

/** Every release newer than `version`, oldest first, with its engines.node ('' when it says none). */
function newerReleases(name, version) {
  // `>=`, not `>`: npm fails when no version matches. One match gives one value, not an array,
  // and a release without engines is a bare version string.
  const parsed = JSON.parse(execFileSync('npm', ['view', `${name}@>=${version}`, 'version', 'engines', '--json'], { encoding: 'utf8' }));
  return (Array.isArray(parsed) ? parsed : [parsed])
    .map((r) => (typeof r === 'string' ? { version: r, node: '' } : { version: r.version, node: r.engines?.node ?? '' }))
    .filter((r) => semver.gt(r.version, version))
    .sort((a, b) => semver.compare(a.version, b.version));
}

/** @types/node describes one Node major: it follows the oldest supported one, not the newest Node. */
const runsOnOldestNode = (name, release) =>
  name === '@types/node'
    ? semver.major(release.version) === semver.major(oldestNode)
    : release.node === '' || semver.satisfies(oldestNode, release.node);

const rows = [];
const upgrades = [];
for (const [name, version] of Object.entries(pinned)) {
  const releases = newerReleases(name, version);
  const usable = releases.filter((r) => runsOnOldestNode(name, r)).at(-1);
  const newest = releases.at(-1);
  if (usable) upgrades.push(`${name}@${usable.version}`);
  const needs = name === '@types/node' ? `types of node ${semver.major(newest?.version ?? '0.0.0')}` : `node ${newest?.node || 'any'}`;
  rows.push([name, version, usable?.version ?? 'up to date', newest && newest !== usable ? `${newest.version} (${needs})` : '-']);
}

const header = ['package', 'pinned', `newest on node ${oldestNode}`, 'newer, needing a newer node'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
for (const row of [header, ...rows])
  console.log(
    row
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd(),
  );
console.log(
  upgrades.length === 0
    ? `\nEvery dependency is at its newest release for node ${oldestNode}.`
    : `\nTo upgrade (then run make test): npm install --save-exact ${upgrades.join(' ')}`,
);
