/**
 * TLS for any listener: its certificate, key and client CA files, checked at start and re-read on
 * an interval, so rotated files reach new connections without a restart (and broken ones never do).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { loadTlsFiles, type TlsContents, type TlsFiles, tlsContextOptions } from '../config/connection';
import type { Logger } from '../log';

// No client-initiated renegotiation on any listener (TLS 1.2; TLS 1.3 has none): each costs the
// server a full handshake and no client of ours needs one. Node counts a connection's handshakes
// and, past this limit (3 per 10 minutes by default), emits ERR_TLS_SESSION_ATTACK and the
// listener closes the connection. It only counts on the server side of a connection.
// The module object itself: an `import * as` namespace is a copy (or frozen), where setting it does nothing.
(require('node:tls') as { CLIENT_RENEG_LIMIT: number }).CLIENT_RENEG_LIMIT = 0;

/**
 * One listener's credentials: the files as they were at start, then each valid change of them.
 * A changed set that does not pass loadTlsFiles (half-written, a key for another certificate,
 * expired, gone) is logged as an error and the previous one goes on serving.
 *
 * Why not grpc-js's FileWatcherCertificateProvider with createCertificateProviderServerCredentials:
 * those fail closed (a half-written file makes grpc-js drop every new connection until it is
 * fixed), they put TLS inside grpc-js where the listener's handshake timeout cannot see it, and the
 * XML-RPC and metrics listeners are node:https servers they cannot serve. Rotation here is
 * tls.Server#setSecureContext: new connections get the new context, open ones keep theirs.
 */
export class TlsCredentials {
  private current: TlsContents;
  private readonly servers = new Set<tls.Server>();
  private timer: NodeJS.Timeout | undefined;
  /** The last problem, so files that stay broken are reported once, not every interval. */
  private refused: string | undefined;

  /** Throws when the files do not pass loadTlsFiles (loadConfig has checked them moments before). */
  constructor(
    private readonly files: TlsFiles,
    private readonly logger: Logger,
    /** Which listener, for logs. */
    private readonly listener: string,
  ) {
    const loaded = loadTlsFiles(files);
    if (typeof loaded === 'string') throw new Error(loaded);
    this.current = loaded;
  }

  /** For tls.createServer or https.createServer: the files, and mutual TLS when a client CA is set. */
  serverOptions(): tls.TlsOptions {
    const mutual = this.files.clientCa !== undefined;
    return { ...tlsContextOptions(this.current), requestCert: mutual, rejectUnauthorized: mutual };
  }

  /** `server` (made with serverOptions()) gets each valid change of the files for its new connections. */
  watch(server: tls.Server): void {
    this.servers.add(server);
    this.timer ??= setInterval(() => this.reload(), this.files.reloadMs).unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.servers.clear();
  }

  /** What is logged about the served certificate: never the key. */
  describe(): Record<string, unknown> {
    const leaf = this.current.leaf;
    return {
      listener: this.listener,
      subject: leaf.subject,
      notAfter: new Date(leaf.validTo).toISOString(),
      sha256: leaf.fingerprint256,
      mutual: this.files.clientCa !== undefined,
    };
  }

  private reload(): void {
    const loaded = loadTlsFiles(this.files);
    if (typeof loaded === 'string') {
      if (loaded !== this.refused)
        this.logger.error('TLS files not loaded: still serving the previous ones', { listener: this.listener, problem: loaded });
      this.refused = loaded;
      return;
    }
    this.refused = undefined;
    const c = this.current;
    if (loaded.cert.equals(c.cert) && loaded.key.equals(c.key) && sameBuffer(loaded.clientCa, c.clientCa)) return;
    try {
      for (const server of this.servers) server.setSecureContext(tlsContextOptions(loaded));
    } catch (err) {
      // loadTlsFiles built a context from the same options, so this is not expected; it must not crash the timer.
      this.logger.error('TLS files not loaded: still serving the previous ones', { listener: this.listener, err });
      return;
    }
    this.current = loaded;
    this.logger.info('TLS files reloaded: new connections use them', this.describe());
  }
}

function sameBuffer(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
}

/**
 * An HTTP listener's server: plain http, or https serving `files` (rotated) when they are set.
 * `credentials` is to be closed with the server.
 */
export function httpServer(
  options: http.ServerOptions & { readonly handshakeTimeoutMs: number },
  files: TlsFiles | undefined,
  logger: Logger,
  listener: string,
): { server: http.Server; credentials: TlsCredentials | undefined } {
  const { handshakeTimeoutMs, ...httpOptions } = options;
  if (files === undefined) return { server: http.createServer(httpOptions), credentials: undefined };
  const credentials = new TlsCredentials(files, logger, listener);
  const server = https.createServer({ ...httpOptions, ...credentials.serverOptions(), handshakeTimeout: handshakeTimeoutMs });
  credentials.watch(server);
  return { server, credentials };
}
