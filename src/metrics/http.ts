/**
 * The HTTP listener Prometheus scrapes: GET /metrics and nothing else, with
 * every wait short (headers, idle connections) and a cap on connections where
 * the connection showing the least progress makes room (src/net/http-guard.ts), so
 * idle, slow or reconnecting clients cannot keep scrapes out; https (and
 * mutual TLS) with rotated files when its TLS settings are set.
 */
import type { RequestListener, Server } from 'node:http';
import type { TlsFiles } from '../config/connection';
import type { HostPort } from '../config/kinds';
import type { Logger } from '../log';
import { bind } from '../net/bind';
import { ProgressGuard } from '../net/http-guard';
import { httpServer, type TlsCredentials } from '../net/tls';
import type { Metrics } from './metrics';

export interface MetricsListenerOptions {
  /** How long a client may take to send its request headers from their first byte, plus 1 s per MIN_RATE_BYTES; at most 2.5 times this. */
  readonly requestTimeoutMs?: number;
  /** undefined: plain HTTP. */
  readonly tls?: TlsFiles | undefined;
  /** Other processes' values to merge into each scrape (worker mode: the workers'). */
  readonly others?: Parameters<Metrics['render']>[1];
}

const MAX_CONNECTIONS = 64;
/** Prometheus sends a scrape's request (a few hundred bytes) at once: a short wait tells it from a slow client. */
const HEADER_TIMEOUT_MS = 2_000;
const MIN_RATE_BYTES = 500;
/** A connection with no request (new, or between scrapes) is closed after this long; Prometheus reconnects for the next scrape. */
const IDLE_TIMEOUT_MS = 5_000;

export class MetricsListener {
  private readonly server: Server;
  private readonly credentials: TlsCredentials | undefined;
  private readonly guard: ProgressGuard;

  constructor(metrics: Metrics, logger: Logger, options: MetricsListenerOptions = {}) {
    const headerTimeoutMs = options.requestTimeoutMs ?? HEADER_TIMEOUT_MS;
    const headerMaxMs = 2.5 * headerTimeoutMs;
    const handler: RequestListener = (req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
        return;
      }
      metrics.render(req.headers.accept, options.others).then(
        ({ contentType, body }) =>
          res
            .writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) })
            .end(req.method === 'HEAD' ? undefined : body),
        (err: unknown) => {
          logger.error('metrics could not be rendered', { err });
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics could not be rendered\n');
        },
      );
    };
    // Node's own timeouts are backstops behind the guard's (a TLS handshake has only Node's).
    const backstopMs = headerMaxMs + 1_000;
    const httpOptions = {
      headersTimeout: backstopMs,
      requestTimeout: backstopMs,
      keepAliveTimeout: IDLE_TIMEOUT_MS,
      maxHeaderSize: 16_384,
      handshakeTimeoutMs: headerTimeoutMs,
    };
    ({ server: this.server, credentials: this.credentials } = httpServer(httpOptions, options.tls, logger, 'metrics'));
    this.server.on('request', handler);
    // No server.maxConnections: it refuses the new connection, so 64 idle ones kept every scrape out.
    this.guard = new ProgressGuard(
      this.server,
      { maxConnections: MAX_CONNECTIONS, headerTimeoutMs, headerMaxMs, minRateBytes: MIN_RATE_BYTES, idleTimeoutMs: IDLE_TIMEOUT_MS },
      logger,
      'metrics',
    );
    this.server.timeout = backstopMs; // a socket that moves no byte at all
  }

  /** Binds `at` (port 0 picks one) and returns the bound port. */
  listen(at: HostPort): Promise<number> {
    return bind(this.server, at);
  }

  close(): Promise<void> {
    this.credentials?.close();
    this.guard.close();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
