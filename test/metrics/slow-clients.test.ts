/**
 * Issue 19: /metrics keeps being scraped while idle connections, reconnecting as soon as they are
 * cut, fill its 64-connection cap: short idle and header timeouts, and at the cap the connection
 * idle the longest makes room. Before, the cap refused every new connection: 0 of 20 scrapes.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log';
import { MetricsListener } from '../../src/metrics/http';
import { Metrics } from '../../src/metrics/metrics';
import { waitUntil } from '../helpers';
import { KeepAliveCaller, startDrippers } from '../slow-clients';
import { makePki, type Pki } from '../tls/pki';

const SCRAPES = 20;

describe('/metrics under idle and slow clients', () => {
  let pki: Pki;
  beforeAll(() => {
    pki = makePki();
  });
  afterAll(() => pki.remove());

  for (const [what, useTls, idleTls, head, drip] of [
    ['80 idle connections', false, false, '', ''],
    ['80 connections dripping headers', false, false, '', `GET /metrics HTTP/1.1\r\nHost: x\r\n${'X-Slow: y\r\n'.repeat(100)}`],
    ['TLS, 80 idle TCP connections (no handshake)', true, false, '', ''],
    ['TLS, 80 idle connections past the handshake', true, true, '', ''],
  ] as const) {
    it(`${what}, reconnecting when cut: at least 95% of 20 scrapes answered`, async () => {
      const ca = useTls ? readFileSync(pki.ca, 'utf8') : undefined;
      const tls = useTls
        ? {
            cert: { env: 'KSM_SCORER_METRICS_TLS_CERT', path: pki.server.cert },
            key: { env: 'KSM_SCORER_METRICS_TLS_KEY', path: pki.server.key },
            clientCa: undefined,
            reloadMs: 60_000,
          }
        : undefined;
      const metrics = new Metrics();
      metrics.counter('ksm_scorer_test_total', 'A sample for the scrapes to read.', []).inc();
      const listener = new MetricsListener(metrics, silentLogger, { tls });
      const port = await listener.listen({ host: '127.0.0.1', port: 0 });
      const drippers = startDrippers({ port, connections: 80, head, drip, intervalMs: 500, ca: idleTls ? ca : undefined });
      const prometheus = new KeepAliveCaller(port, ca);
      try {
        await waitUntil(() => drippers.opened() >= 80);
        await new Promise((r) => setTimeout(r, 1_000));
        let ok = 0;
        const failures: string[] = [];
        await Promise.all(
          Array.from({ length: SCRAPES }, async (_, i) => {
            await new Promise((r) => setTimeout(r, i * 100));
            try {
              const res = await prometheus.request('GET', '/metrics', undefined, 3_000);
              if (res.status === 200 && res.text.includes('ksm_scorer_test_total 1')) ok++;
              else failures.push(`HTTP ${res.status}`);
            } catch (err) {
              failures.push(String(err));
            }
          }),
        );
        console.info(`/metrics, ${what}: ${ok}/${SCRAPES} scrapes answered (${drippers.opened()} hostile connections opened)`, failures);
        expect(ok).toBeGreaterThanOrEqual(Math.ceil(0.95 * SCRAPES));
      } finally {
        drippers.stop();
        prometheus.close();
        await listener.close();
      }
    });
  }
});
