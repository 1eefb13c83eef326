/**
 * The HTTP listeners over https (issue 14): the engine's XML-RPC listener with its own TLS files
 * (the engine's `ExternalSchedulerServiceURL` as https://), refused without the CA, rotated like the
 * gRPC files; and /metrics over mutual TLS.
 */
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import { createLogger } from '../../src/log';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { type Scorer, startScorer, startSimulator, unary, waitUntil } from '../helpers';
import { apacheCall, parseResponse, plain } from '../scheduler-proxy/wire';
import { type KeyPair, makePki, type Pki, servedCopy } from './pki';

describe('the XML-RPC and metrics listeners over https', () => {
  let sim: SimulatedEngine;
  let pki: Pki;
  let scorer: Scorer | undefined;
  const logs: string[] = [];

  beforeAll(async () => {
    pki = makePki();
    sim = await startSimulator({ hosts: 4, vms: 40, seed: 3 });
  });
  afterEach(async () => {
    await scorer?.close();
    scorer = undefined;
  });
  afterAll(async () => {
    await sim.stop();
    pki.remove();
  });

  /** One request on a new connection; resolves with the answer and the certificate served, or rejects with the TLS error. */
  const request = (port: number, opts: { method?: string; path?: string; body?: string; ca?: string; client?: KeyPair } = {}) =>
    new Promise<{ status: number; text: string; servedName: string }>((resolve, reject) => {
      const { ca, client } = opts;
      const req = https.request(
        {
          host: '127.0.0.1',
          port,
          method: opts.method ?? 'POST',
          path: opts.path ?? '/',
          agent: false,
          servername: 'localhost',
          headers: { 'content-type': 'text/xml' },
          ...(ca ? { ca: readFileSync(ca) } : {}),
          ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode!,
              text: Buffer.concat(chunks).toString(),
              servedName: (res.socket as TLSSocket).getPeerCertificate().subject.CN as string,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(opts.body);
    });
  const post = (port: number, body: string, ca?: string) => request(port, { body, ...(ca ? { ca } : {}) });

  it('answers over https with the CA, refuses a client without it, and serves rotated files to new connections', async () => {
    const served = servedCopy(pki, pki.server, 'xmlrpc');
    scorer = await startScorer(
      sim,
      {
        KSM_SCORER_OVIRT_PROXY_LISTEN: '127.0.0.1:0',
        KSM_SCORER_OVIRT_PROXY_TLS_CERT: served.cert,
        KSM_SCORER_OVIRT_PROXY_TLS_KEY: served.key,
        KSM_SCORER_TLS_RELOAD_SECONDS: '0.1',
      },
      { logger: createLogger('debug', { write: (line) => void logs.push(line) }) },
    );
    const port = scorer.service.ovirtProxyPort!;
    const discover = apacheCall('discover', []);

    const answer = await post(port, discover, pki.ca);
    expect(answer.status).toBe(200);
    const response = parseResponse(answer.text);
    expect('value' in response && plain(response.value)).toHaveProperty('scores');
    expect(answer.servedName).toBe('server');

    await expect(post(port, discover)).rejects.toThrow(/certificate/);

    pki.install(pki.serverNext, served);
    await waitUntil(() => logs.some((l) => l.includes('"msg":"TLS files reloaded') && l.includes('"listener":"XML-RPC"')));
    expect((await post(port, discover, pki.ca)).servedName).toBe('server-next');

    // The gRPC listener has its own settings: still plaintext here.
    const res = await unary<unknown, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', { os: { type: 'rhel_8x64', version: '' } });
    expect(res.scores).toHaveLength(4);
  });

  it('/metrics over mutual TLS: scraped with a client certificate, refused without one', async () => {
    scorer = await startScorer(sim, {
      KSM_SCORER_METRICS_TLS_CERT: pki.server.cert,
      KSM_SCORER_METRICS_TLS_KEY: pki.server.key,
      KSM_SCORER_METRICS_TLS_CLIENT_CA: pki.ca,
    });
    const port = scorer.service.metricsPort!;
    const scrape = await request(port, { method: 'GET', path: '/metrics', ca: pki.ca, client: pki.client });
    expect(scrape.status).toBe(200);
    expect(scrape.text).toMatch(/^ksm_scorer_inventory_hosts /m);
    await expect(request(port, { method: 'GET', path: '/metrics', ca: pki.ca })).rejects.toThrow(/alert certificate required/);
    // Node's TLS server refuses a certificate it cannot verify once the handshake is done, closing the connection without an alert.
    await expect(request(port, { method: 'GET', path: '/metrics', ca: pki.ca, client: pki.otherClient })).rejects.toThrow(
      /socket hang up|ECONNRESET|EPIPE/,
    );
  });
});
