// What engine status and engine record cost, on the simulated engine at a given scale (run after
// `make build`): node scripts/measure-engine-view.mjs [HOSTS] [VMS]
// - engine requests of one full inventory refresh against those of one engine-view read;
// - time of the view's read, of a recording, its size, and of the first inventory load from it,
//   next to the same load from the live simulator, with the scores of a sample of VMs compared.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const dist = (m) => require(`../dist/${m}`);
const { SimulatedEngine } = dist('simulator/engine.js');
const { EngineClient } = dist('ovirt/client.js');
const { readSchedulingSetup } = dist('ovirt/scheduling.js');
const { recordAnswers } = dist('recording/record.js');
const { loadConfig } = dist('config.js');
const { startService, scoreVmLikeScoreHosts } = dist('service.js');
const { silentLogger } = dist('log.js');

const hosts = Number(process.argv[2] ?? 1000);
const vms = Number(process.argv[3] ?? 20000);
const sim = new SimulatedEngine({ hosts, vms, seed: 1, maxRecorded: 10_000 });
const url = await sim.start();
const env = {
  OVIRT_URL: url,
  OVIRT_USERNAME: sim.username,
  OVIRT_PASSWORD: sim.password,
  KSM_SCORER_LISTEN: '127.0.0.1:0',
  KSM_SCORER_METRICS_LISTEN: '127.0.0.1:0',
};
const config = loadConfig(env);
const client = new EngineClient({ ...config.engine, connection: config.engine.connection, logger: silentLogger });
const ms = (t0) => Math.round(performance.now() - t0);

// The inventory's first load (one full refresh) and the view's read, counted apart.
let t0 = performance.now();
const live = await startService(config, silentLogger);
while (live.inventory.snapshot() === undefined) await new Promise((r) => setTimeout(r, 20));
const liveLoadMs = ms(t0);
await live.engineView.refresh();
// Requests by path made while `run` runs.
const requestsOf = async (run) => {
  const before = sim.apiRequests().length;
  await run();
  const counts = {};
  for (const r of sim.apiRequests().slice(before)) {
    const path = r.path.replace(/\/schedulingpolicies\/[^/]+\/weights/, '/schedulingpolicies/{id}/weights');
    counts[path] = (counts[path] ?? 0) + 1;
  }
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return `${total} (${Object.entries(counts)
    .map(([p, n]) => `${p} x${n}`)
    .join(', ')})`;
};
const fullRefreshRequests = await requestsOf(() => live.inventory.refresh());
let viewMs = 0;
const viewReadRequests = await requestsOf(async () => {
  const t = performance.now();
  await readSchedulingSetup(client);
  viewMs = ms(t);
});

const dir = join(mkdtempSync(join(tmpdir(), 'ksm-measure-')), 'rec');
t0 = performance.now();
const index = await recordAnswers(client, dir, { anonymize: false, pageSize: config.engine.pageSize, maxVms: config.engine.maxVms });
const recordMs = ms(t0);
const bytes = readdirSync(dir).reduce((s, f) => s + statSync(join(dir, f)).size, 0);
t0 = performance.now();
const anonDir = `${dir}-anon`;
await recordAnswers(client, anonDir, { anonymize: true, pageSize: config.engine.pageSize, maxVms: config.engine.maxVms });
const anonMs = ms(t0);

t0 = performance.now();
const replay = await startService(loadConfig({ ...env, OVIRT_URL: `file:${dir}` }), silentLogger);
while (replay.inventory.snapshot() === undefined) await new Promise((r) => setTimeout(r, 20));
const replayLoadMs = ms(t0);

const sample = [...sim.inventory.vms.keys()].filter((_, i) => i % Math.max(1, Math.floor(vms / 200)) === 0);
const hostIds = [...sim.inventory.hosts.keys()];
let same = 0;
for (const id of sample) {
  const signal = new AbortController().signal;
  const a = await scoreVmLikeScoreHosts(live.inventory, config.limits)(id, hostIds, signal);
  const b = await scoreVmLikeScoreHosts(replay.inventory, config.limits)(id, hostIds, signal);
  if (JSON.stringify(a) === JSON.stringify(b)) same++;
}
console.log(
  JSON.stringify(
    {
      hosts,
      vms,
      fullRefreshRequests,
      viewReadRequests,
      viewReadMs: viewMs,
      record: { answers: index.answers.length, mb: +(bytes / 2 ** 20).toFixed(1), ms: recordMs, anonymizedMs: anonMs },
      firstLoadMs: { live: liveLoadMs, replay: replayLoadMs },
      sampleVmsScoredSame: `${same}/${sample.length}`,
    },
    null,
    1,
  ),
);
await replay.stop();
await live.stop();
await client.close();
await sim.stop();
rmSync(join(dir, '..'), { recursive: true, force: true });
