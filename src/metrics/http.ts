/**
 * The HTTP listener Prometheus scrapes: GET /metrics and nothing else, with
 * every wait bounded (headers, whole request, idle keep-alive) and a cap on
 * connections, so a slow or hostile client cannot hold it open; https (and
 * mutual TLS) with rotated files when its TLS settings are set.
 */
import type { RequestListener, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log';
import { httpServer, type TlsCredentials, type TlsFiles } from '../tls';
import type { Metrics } from './metrics';

export interface MetricsListenerOptions {
  /** How long a client may take to send its request headers (and the whole request). */
  readonly requestTimeoutMs?: number;
  /** undefined: plain HTTP. */
  readonly tls?: TlsFiles | undefined;
  /** Other processes' values to merge into each scrape (worker mode: the workers'). */
  readonly others?: Parameters<Metrics['render']>[1];
}

const MAX_CONNECTIONS = 64;

export class MetricsListener {
  private readonly server: Server;
  private readonly credentials: TlsCredentials | undefined;

  constructor(metrics: Metrics, logger: Logger, options: MetricsListenerOptions = {}) {
    const timeout = options.requestTimeoutMs ?? 10_000;
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
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) }).end(req.method === 'HEAD' ? undefined : body),
        (err: unknown) => {
          logger.error('metrics could not be rendered', { err });
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics could not be rendered\n');
        },
      );
    };
    const httpOptions = { headersTimeout: timeout, requestTimeout: timeout, keepAliveTimeout: 5_000, maxHeaderSize: 16_384, handshakeTimeoutMs: timeout };
    ({ server: this.server, credentials: this.credentials } = httpServer(httpOptions, options.tls, logger, 'metrics'));
    this.server.on('request', handler);
    this.server.maxConnections = MAX_CONNECTIONS;
    this.server.timeout = timeout; // idle sockets too
  }

  /** Binds HOST:PORT (port 0 picks one) and returns the bound port. */
  listen(address: string): Promise<number> {
    const m = /^\[?(.*?)\]?:(\d+)$/.exec(address)!;
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: m[1], port: Number(m[2]) }, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    this.credentials?.close();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
