/**
 * The gRPC listener over TLS and mutual TLS (issue 14), with certificates openssl makes at test
 * time: who is accepted and refused, rotation of the files while connections are open, broken
 * files during rotation, and the handshake timeout with TLS in front of HTTP/2.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import { createLogger } from '../../src/log';
import { loadScorerProto } from '../../src/contract/proto';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { expectGrpcError, type Scorer, startScorer, startSimulator, unary, waitUntil } from '../helpers';
import { grpcFrame, HEALTH_CHECK, rawCall } from '../raw-grpc';
import { type KeyPair, makePki, type Pki, servedCopy } from './pki';

const OS = { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' };
const HOSTS = 5;

describe('gRPC over TLS', () => {
  let sim: SimulatedEngine;
  let pki: Pki;
  let scorer: Scorer | undefined;
  let logs: string[] = [];
  const clients: grpc.Client[] = [];

  beforeAll(async () => {
    pki = makePki();
    sim = await startSimulator({ hosts: HOSTS, vms: 50, seed: 5 });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await scorer?.close();
    scorer = undefined;
    logs = [];
  });
  afterAll(async () => {
    await sim.stop();
    pki.remove();
  });

  const start = async (served: KeyPair, env: Record<string, string> = {}) => {
    scorer = await startScorer(
      sim,
      { KSM_SCORER_TLS_CERT: served.cert, KSM_SCORER_TLS_KEY: served.key, KSM_SCORER_TLS_RELOAD_SECONDS: '0.1', ...env },
      {
        logger: createLogger('debug', { write: (line) => void logs.push(line) }),
      },
    );
    return scorer.service.port;
  };
  const tlsClient = (port: number, ca: string | null, pair?: KeyPair) => {
    const creds = grpc.credentials.createSsl(
      ca === null ? null : readFileSync(ca),
      pair ? readFileSync(pair.key) : null,
      pair ? readFileSync(pair.cert) : null,
    );
    const client = new (loadScorerProto().ksmscorer.v1.HostScorerService)(`127.0.0.1:${port}`, creds);
    clients.push(client);
    return client;
  };
  const score = (client: grpc.Client) =>
    unary<unknown, ScoreHostsResponse__Output>(client, 'ScoreHosts', { os: OS }, { deadline: Date.now() + 5_000 });
  /** The certificate a new TLS connection is served (its common name). */
  const servedName = async (port: number, pair?: KeyPair): Promise<string> => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: readFileSync(pki.ca),
      ALPNProtocols: ['h2'],
      servername: 'localhost',
      ...(pair ? { cert: readFileSync(pair.cert), key: readFileSync(pair.key) } : {}),
    });
    try {
      await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
      return socket.getPeerCertificate().subject.CN as string;
    } finally {
      socket.destroy();
    }
  };
  const logged = (msg: string) => logs.filter((l) => l.includes(`"msg":"${msg}`)).map((l) => JSON.parse(l) as Record<string, unknown>);

  it('TLS: a client trusting the CA is answered; one without the CA is refused with a certificate error', async () => {
    const port = await start(pki.server);
    expect((await score(tlsClient(port, pki.ca))).scores).toHaveLength(HOSTS);
    const refused = await expectGrpcError(score(tlsClient(port, null)), grpc.status.UNAVAILABLE);
    expect(refused.details).toMatch(/certificate/);
    // A plaintext client gets nothing either.
    const plain = new (loadScorerProto().ksmscorer.v1.HostScorerService)(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    clients.push(plain);
    await expectGrpcError(score(plain), grpc.status.UNAVAILABLE);
    expect(logged('gRPC listener serves TLS')[0]).toMatchObject({ subject: 'CN=server', mutual: false });
  });

  it('mutual TLS: refused without a client certificate and with one from another CA; answered with a good one', async () => {
    const port = await start(pki.server, { KSM_SCORER_TLS_CLIENT_CA: pki.ca });
    await expectGrpcError(score(tlsClient(port, pki.ca)), grpc.status.UNAVAILABLE);
    await expectGrpcError(score(tlsClient(port, pki.ca, pki.otherClient)), grpc.status.UNAVAILABLE);
    expect((await score(tlsClient(port, pki.ca, pki.client))).scores).toHaveLength(HOSTS);
    // Refused in the handshake: a raw TLS connection without a certificate never gets to HTTP/2.
    const socket = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(pki.ca), ALPNProtocols: ['h2'], servername: 'localhost' });
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('close', resolve));
  });

  it('rotation: after the files are replaced a new connection gets the new certificate, an open connection keeps working', async () => {
    const served = servedCopy(pki, pki.server, 'rotating');
    const port = await start(served);
    // An HTTP/2 connection opened before the rotation, kept open across it.
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca: readFileSync(pki.ca), servername: 'localhost' });
    try {
      const health = () => rawCall(`127.0.0.1:${port}`, HEALTH_CHECK, grpcFrame(Buffer.alloc(0)), { session });
      expect((await health()).grpcStatus).toBe(0);
      expect(await servedName(port)).toBe('server');

      pki.install(pki.serverNext, served);
      await waitUntil(() => logged('TLS files reloaded').length > 0);
      expect(logged('TLS files reloaded')[0]).toMatchObject({ listener: 'gRPC', subject: 'CN=server-next' });
      expect(await servedName(port)).toBe('server-next');
      expect((await score(tlsClient(port, pki.ca))).scores).toHaveLength(HOSTS);

      // The old connection: the same socket, still with the old certificate, still answered.
      expect(session.closed || session.destroyed).toBe(false);
      expect((session.socket as tls.TLSSocket).getPeerCertificate().subject.CN).toBe('server');
      const again = await health();
      expect(again.grpcStatus).toBe(0);
      expect(again.body).toEqual(grpcFrame(Buffer.from([0x08, 0x01]))); // SERVING
    } finally {
      session.close();
    }
  });

  it('a half-written file or a key for another certificate during rotation: the previous credentials keep serving, an error is logged', async () => {
    const served = servedCopy(pki, pki.server, 'broken');
    const port = await start(served);
    const errors = () => logged('TLS files not loaded').map((e) => e.problem as string);

    const next = readFileSync(pki.serverNext.cert);
    writeFileSync(served.cert, next.subarray(0, Math.floor(next.length / 2)));
    await waitUntil(() => errors().length === 1);
    expect(errors()[0]).toMatch(/^KSM_SCORER_TLS_CERT: .*broken\.pem ends inside a certificate/);
    expect(await servedName(port)).toBe('server');
    expect((await score(tlsClient(port, pki.ca))).scores).toHaveLength(HOSTS);

    writeFileSync(served.cert, next); // the certificate complete, its key not yet written
    await waitUntil(() => errors().length === 2);
    expect(errors()[1]).toMatch(/^KSM_SCORER_TLS_KEY: the key in .*broken\.key does not match the certificate in KSM_SCORER_TLS_CERT/);
    expect(await servedName(port)).toBe('server');

    writeFileSync(served.key, readFileSync(pki.serverNext.key));
    await waitUntil(() => logged('TLS files reloaded').length === 1);
    expect(await servedName(port)).toBe('server-next');
    expect(errors()).toHaveLength(2); // each broken state reported once, not every interval
    // Key material never reaches the log.
    expect(logs.join('\n')).not.toContain('PRIVATE KEY');
  });

  it('at KSM_SCORER_MAX_CONNECTIONS under TLS, a quiet TLS connection makes room for a real client', async () => {
    const port = await start(pki.server, { KSM_SCORER_MAX_CONNECTIONS: '2' });
    const quiet = [0, 1].map(() => http2.connect(`https://127.0.0.1:${port}`, { ca: readFileSync(pki.ca), servername: 'localhost' }));
    try {
      for (const session of quiet) {
        session.on('error', () => {});
        await new Promise((resolve) => session.once('remoteSettings', resolve));
      }
      expect((await score(tlsClient(port, pki.ca))).scores).toHaveLength(HOSTS);
      await waitUntil(() => quiet.some((session) => session.closed || session.destroyed));
    } finally {
      for (const session of quiet) session.destroy();
    }
  });

  it('the handshake timeout covers TLS: a silent TCP connection and a TLS connection that sends no preface are closed', async () => {
    const port = await start(pki.server, { KSM_SCORER_HANDSHAKE_TIMEOUT_SECONDS: '0.3' });
    const silent = net.connect(port, '127.0.0.1');
    silent.on('error', () => {});
    const quiet = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(pki.ca), ALPNProtocols: ['h2'], servername: 'localhost' });
    quiet.on('error', () => {});
    await new Promise((resolve) => quiet.once('secureConnect', resolve));
    await Promise.all([
      new Promise((resolve) => silent.once('close', resolve)).then(() => console.log('silent closed')),
      new Promise((resolve) => quiet.once('close', resolve)).then(() => console.log('quiet closed')),
    ]);
    expect((await score(tlsClient(port, pki.ca))).scores).toHaveLength(HOSTS);
  });
});
