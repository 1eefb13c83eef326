/**
 * docs/alerts/engine-status.rules.yml with the real promtool: `check rules`
 * passes, and `test rules` fires KsmScorerConfiguredButNeverCalled only for
 * an instance whose engine weighs the unit on some cluster and never called,
 * after its 2 hours; and every metric the rule reads is on a live /metrics.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startScorer, startSimulator } from '../helpers';
import { scrape, valueOf } from '../metrics/scrape';

const RULES = join(__dirname, '..', '..', 'docs', 'alerts', 'engine-status.rules.yml');

function promtool(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('promtool', args, { timeout: 60_000 }, (err, stdout, stderr) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT')
        throw new Error('promtool is missing: test/install-deps.sh installs it (Debian package prometheus)');
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, output: `${stdout}${stderr}` });
    });
  });
}

const series = (name: string, instance: string, values: string) =>
  `      - series: '${name}{job="ksm-scorer",instance="${instance}"}'\n        values: '${values}'`;

describe('the "configured but never called" alert rule', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ksm-rules-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('promtool check rules passes', async () => {
    const { code, output } = await promtool(['check', 'rules', RULES]);
    expect(output).toMatch(/SUCCESS: 1 rules found/);
    expect(code).toBe(0);
  });

  it('fires after 2 hours for the instance weighed on clusters and never called; not for one called, nor for one no cluster weighs', async () => {
    const test = join(dir, 'engine-status.test.yml');
    writeFileSync(
      test,
      `rule_files: ['${RULES}']
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
${series('ksm_scorer_engine_clusters_weighing_unit', 'never-called', '2x200')}
${series('ksm_scorer_xmlrpc_last_call_timestamp_seconds', 'never-called', '0x200')}
${series('ksm_scorer_engine_clusters_weighing_unit', 'called', '2x200')}
${series('ksm_scorer_xmlrpc_last_call_timestamp_seconds', 'called', '0x30 1800x170')}
${series('ksm_scorer_engine_clusters_weighing_unit', 'not-weighed', '0x200')}
${series('ksm_scorer_xmlrpc_last_call_timestamp_seconds', 'not-weighed', '0x200')}
    alert_rule_test:
      - eval_time: 90m
        alertname: KsmScorerConfiguredButNeverCalled
        exp_alerts: []
      - eval_time: 150m
        alertname: KsmScorerConfiguredButNeverCalled
        exp_alerts:
          - exp_labels: { severity: warning, job: ksm-scorer, instance: never-called }
            exp_annotations:
              summary: "oVirt engine weighs ksm_same_os_score on 2 cluster(s) but has never called never-called"
              description: "The engine's scheduling policies use the unit on 2 cluster(s), yet no XML-RPC call arrived since ksm-scorer started 2 or more hours ago. Run \`ksm-scorer engine status\` on the host: it says which link is missing (ExternalSchedulerEnabled, ExternalSchedulerServiceURL, an engine restart, KSM_SCORER_OVIRT_PROXY_LISTEN)."
`,
    );
    const { code, output } = await promtool(['test', 'rules', test]);
    expect(output).toMatch(/SUCCESS/);
    expect(code).toBe(0);
  });

  it("the metrics the rule reads are on a live /metrics, with the simulated engine's configured example", async () => {
    const sim = await startSimulator({ hosts: 45, vms: 50 });
    const scorer = await startScorer(sim, { KSM_SCORER_OVIRT_PROXY_LISTEN: '127.0.0.1:0' });
    try {
      await scorer.service.engineView.refresh();
      const { text } = await scrape(scorer.service.metricsPort!);
      expect(valueOf(text, 'ksm_scorer_engine_clusters_weighing_unit')).toBe(1);
      expect(valueOf(text, 'ksm_scorer_xmlrpc_last_call_timestamp_seconds')).toBe(0);
    } finally {
      await scorer.close();
      await sim.stop();
    }
  });
});
