/**
 * What an operator loads next to the service, checked with Prometheus's own promtool (Debian's
 * `prometheus` package, installed by test/install-deps.sh): a live /metrics passes
 * `promtool check metrics`; deploy/prometheus's rules pass `check rules` and their unit tests
 * (`test rules`, each alert firing and not firing); every metric the rules and the Grafana
 * dashboard name exists on a live /metrics; every alert has its runbook in docs/observability.md.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { COUNTER_NAMED_GAUGES } from '../../src/metrics/metrics';
import { killAll, type Proc, spawnProc, waitForLog } from '../processes';
import { scrape, valueOf } from '../metrics/scrape';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const RULES_DIR = join(ROOT, 'deploy', 'prometheus');
const RULES = join(RULES_DIR, 'ksm-scorer-rules.yml');
const DASHBOARD = join(ROOT, 'deploy', 'grafana', 'ksm-scorer.json');

/** promtool, or a failure saying how to get it: the tests need the real one. */
async function promtool(args: string[], stdin?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { cwd: RULES_DIR, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new Error('promtool is not installed: `make test-deps` installs it (Debian package prometheus)') : err),
    );
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
    child.stdin.end(stdin ?? '');
  });
}

/** `serve` on the simulator with the XML-RPC listener on, so every metric family is declared; its metrics port. */
async function serveForMetrics(env: Record<string, string> = {}): Promise<number> {
  return (await serveWithMetrics(env)).port;
}

async function serveWithMetrics(env: Record<string, string> = {}): Promise<{ port: number; server: Proc }> {
  const server = spawnProc(process.execPath, ['--no-memory-reducer', '--single-threaded-gc', CLI, 'serve'], {
    KSM_SCORER_LISTEN: '127.0.0.1:0',
    KSM_SCORER_OVIRT_PROXY_LISTEN: '127.0.0.1:0',
    KSM_SCORER_SIM_HOSTS: '5',
    KSM_SCORER_SIM_VMS: '50',
    ...env,
  });
  const port = Number((await waitForLog(server, /"metrics":"http:\/\/127\.0\.0\.1:(\d+)\/metrics".*"msg":"ksm-scorer listening"/, 30_000))[1]);
  await waitForLog(server, /"msg":"inventory refreshed"/, 30_000);
  return { port, server };
}

/** Metric families of an exposition, histograms also under their _bucket, _sum and _count names. */
function families(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name!);
    if (type === 'histogram' || type === 'summary') for (const s of ['_bucket', '_sum', '_count']) names.add(name! + s);
  }
  return names;
}

/** Metric names a PromQL expression reads: the service's and Node's (`up` is Prometheus's own, from the scrape). */
const metricsIn = (expr: string) => [...new Set(expr.match(/\b(?:ksm_scorer|grpc_server|process|nodejs)_[a-z0-9_]+/g) ?? [])];

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules = () => (parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

describe('/metrics passes promtool check metrics', () => {
  afterAll(killAll);

  it('one process: no complaint, and none of prom-client\'s gauges named like counters', async () => {
    const { text } = await scrape(await serveForMetrics());
    for (const name of COUNTER_NAMED_GAUGES) expect(text).not.toContain(`\n# TYPE ${name} `);
    expect(text).toMatch(/^# TYPE nodejs_active_handles gauge$/m);
    expect(await promtool(['check', 'metrics'], text)).toEqual({ code: 0, out: '' });
  }, 60_000);

  it('worker processes (the primary merges their metrics): no complaint either', async () => {
    const { text } = await scrape(await serveForMetrics({ KSM_SCORER_WORKERS: '2' }));
    expect(await promtool(['check', 'metrics'], text)).toEqual({ code: 0, out: '' });
  }, 60_000);

  it('with workers, the primary counts them running and restarted: a killed worker shows as a restart', async () => {
    const { port, server } = await serveWithMetrics({ KSM_SCORER_WORKERS: '2' });
    const first = await scrape(port);
    expect(valueOf(first.text, 'ksm_scorer_workers')).toBe(2);
    expect(valueOf(first.text, 'ksm_scorer_worker_restarts_total')).toBe(0);
    const pid = Number((await waitForLog(server, /"workerPid":(\d+).*"msg":"worker started"/))[1]);
    process.kill(pid, 'SIGKILL');
    await waitForLog(server, /"msg":"worker exited: starting another"/);
    // The replacement starts after a backoff (the killed worker died young): wait for it, bounded.
    for (let i = 0; i < 200 && server.stderr.match(/"msg":"worker started"/g)!.length < 3; i++) await new Promise((r) => setTimeout(r, 50));
    const after = await scrape(port);
    expect(valueOf(after.text, 'ksm_scorer_worker_restarts_total')).toBe(1);
    expect(valueOf(after.text, 'ksm_scorer_workers')).toBe(2);
  }, 60_000);
});

describe('deploy/prometheus alert rules and deploy/grafana dashboard', () => {
  let live: Set<string>;
  beforeAll(async () => {
    // One process, and workers (whose primary adds its worker metrics).
    live = new Set([...families((await scrape(await serveForMetrics())).text), ...families((await scrape(await serveForMetrics({ KSM_SCORER_WORKERS: '2' }))).text)]);
  }, 60_000);
  afterAll(killAll);

  it('promtool check rules accepts the rules file', async () => {
    const { code, out } = await promtool(['check', 'rules', RULES]);
    expect(code, out).toBe(0);
    expect(out).toMatch(new RegExp(`SUCCESS: ${rules().length} rules found`));
  });

  it('promtool test rules: every alert is tested firing and not firing, and the tests pass', async () => {
    const tests = readFileSync(join(RULES_DIR, 'ksm-scorer-rules.test.yml'), 'utf8');
    const cases = (parseYaml(tests) as { tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] }).tests.flatMap((t) => t.alert_rule_test);
    for (const { alert } of rules()) {
      expect(cases.some((c) => c.alertname === alert && c.exp_alerts.length === 0), `${alert} not firing`).toBe(true);
      expect(cases.some((c) => c.alertname === alert && c.exp_alerts.length > 0), `${alert} firing`).toBe(true);
    }
    const { code, out } = await promtool(['test', 'rules', 'ksm-scorer-rules.test.yml']);
    expect(code, out).toBe(0);
    expect(out).toContain('SUCCESS');
  });

  it('each alert has a severity, a summary, a description and a runbook section in docs/observability.md', () => {
    const docs = readFileSync(join(ROOT, 'docs', 'observability.md'), 'utf8');
    for (const rule of rules()) {
      expect(rule.labels?.severity, rule.alert).toMatch(/^(critical|warning|info)$/);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
      expect(rule.annotations?.runbook, rule.alert).toBe(`docs/observability.md#${rule.alert.toLowerCase()}`);
      expect(docs, rule.alert).toMatch(new RegExp(`^#### ${rule.alert}$`, 'm'));
    }
  });

  it('every metric the rules read exists on a live /metrics', () => {
    for (const rule of rules()) {
      for (const name of metricsIn(rule.expr)) expect(live.has(name), `${rule.alert}: ${name}`).toBe(true);
    }
  });

  it('the dashboard parses, and every metric its panels read exists on a live /metrics', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; panels: { title: string; type: string; targets?: { expr: string }[] }[] };
    expect(dashboard.uid).toBe('ksm-scorer');
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    expect(exprs.length).toBeGreaterThanOrEqual(20);
    const read = new Set<string>();
    for (const { panel, expr } of exprs) {
      for (const name of metricsIn(expr)) {
        expect(live.has(name), `${panel}: ${name}`).toBe(true);
        read.add(name);
      }
    }
    // The panels the issue asks for: calls and latency, inventory, engine, on-demand reads, score tables.
    for (const name of ['grpc_server_handled_total', 'grpc_server_handling_seconds_bucket', 'ksm_scorer_inventory_age_seconds', 'ksm_scorer_inventory_hosts', 'ksm_scorer_inventory_generation', 'ksm_scorer_engine_requests_total', 'ksm_scorer_on_demand_fetches_total', 'ksm_scorer_score_table_bytes', 'ksm_scorer_workers']) {
      expect(read.has(name), name).toBe(true);
    }
  });
});
