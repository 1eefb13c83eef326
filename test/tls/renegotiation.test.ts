/**
 * Issue 19: a TLS 1.2 client-initiated renegotiation is refused on every listener (gRPC, XML-RPC,
 * metrics): the connection is closed, and the listener goes on serving. Each renegotiation costs
 * the server a full handshake; nothing the service does needs one.
 */
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { type Scorer, startScorer, startSimulator } from '../helpers';
import { PREFACE } from '../raw-h2';
import { makePki, type Pki } from './pki';

describe('TLS renegotiation', () => {
  let sim: SimulatedEngine;
  let pki: Pki;
  let scorer: Scorer;
  let ca: string;

  beforeAll(async () => {
    pki = makePki();
    ca = readFileSync(pki.ca, 'utf8');
    sim = await startSimulator({ hosts: 3, vms: 20, seed: 7 });
    const files = (prefix: string) => ({ [`${prefix}_CERT`]: pki.server.cert, [`${prefix}_KEY`]: pki.server.key });
    scorer = await startScorer(sim, {
      ...files('KSM_SCORER_TLS'),
      ...files('KSM_SCORER_OVIRT_PROXY_TLS'),
      ...files('KSM_SCORER_METRICS_TLS'),
      KSM_SCORER_OVIRT_PROXY_LISTEN: '127.0.0.1:0',
    });
  });
  afterAll(async () => {
    await scorer?.close();
    await sim.stop();
    pki.remove();
  });

  /** A TLS 1.2 connection that sends `first`, then asks to renegotiate: what renegotiate() reported, and whether the server closed the connection. */
  const renegotiate = async (port: number, first: Buffer, alpn?: string[]) => {
    const socket = tls.connect({
      port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca,
      maxVersion: 'TLSv1.2',
      ...(alpn ? { ALPNProtocols: alpn } : {}),
    });
    socket.on('error', () => {});
    socket.on('data', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    socket.write(first);
    await new Promise((r) => setTimeout(r, 100));
    const outcome = await new Promise<string>((resolve) => {
      const started = socket.renegotiate({ rejectUnauthorized: true }, (err) => resolve(err ? `refused: ${err.message}` : 'renegotiated'));
      if (!started) resolve('not started');
      void closed.then(() => resolve('closed'));
      setTimeout(() => resolve('no answer'), 5_000).unref();
    });
    const wasClosed = await Promise.race([closed.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 5_000).unref())]);
    socket.destroy();
    return { outcome, wasClosed };
  };

  for (const [listener, port, first, alpn] of [
    ['gRPC', () => scorer.service.port, PREFACE, ['h2']],
    ['XML-RPC', () => scorer.service.ovirtProxyPort!, Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n'), undefined],
    ['metrics', () => scorer.service.metricsPort!, Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\n'), undefined],
  ] as const) {
    it(`${listener}: a client-initiated renegotiation gets the connection closed`, async () => {
      const { outcome, wasClosed } = await renegotiate(port(), first, alpn ? [...alpn] : undefined);
      expect(outcome).not.toBe('renegotiated');
      expect(wasClosed).toBe(true);
    });
  }
});
