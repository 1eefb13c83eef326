/**
 * TLS for any listener: its certificate, key and client CA files, checked at start and re-read on
 * an interval, so rotated files reach new connections without a restart (and broken ones never do).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import type { Logger } from './log';

// No client-initiated renegotiation on any listener (TLS 1.2; TLS 1.3 has none): each costs the
// server a full handshake and no client of ours needs one. Node counts a connection's handshakes
// and, past this limit (3 per 10 minutes by default), emits ERR_TLS_SESSION_ATTACK and the
// listener closes the connection. It only counts on the server side of a connection.
// The module object itself: an `import * as` namespace is a copy (or frozen), where setting it does nothing.
(require('node:tls') as { CLIENT_RENEG_LIMIT: number }).CLIENT_RENEG_LIMIT = 0;

/** A file named by an environment variable, so every problem can say which variable to fix. */
export interface FileSetting {
  readonly env: string;
  readonly path: string;
}

/** One listener's TLS files; a client CA means mutual TLS. */
export interface TlsFiles {
  readonly cert: FileSetting;
  readonly key: FileSetting;
  readonly clientCa: FileSetting | undefined;
  /** How often the files are read again. */
  readonly reloadMs: number;
}

interface Contents {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly clientCa: Buffer | undefined;
  /** The served certificate (the first of the chain), for logs. */
  readonly leaf: X509Certificate;
}

/**
 * Reads and checks the files: every certificate complete and parseable, the served one not expired,
 * a key that matches it. Returns the contents, or one problem naming the variable.
 * Synchronous on purpose: a few KB, once per interval, and the same code at start and on rotation.
 */
export function loadTlsFiles(files: TlsFiles, now: Date = new Date()): Contents | string {
  const read = (file: FileSetting) => {
    try {
      return readFileSync(file.path);
    } catch (err) {
      return `${file.env}: cannot read ${file.path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
    }
  };
  const cert = read(files.cert);
  if (typeof cert === 'string') return cert;
  const key = read(files.key);
  if (typeof key === 'string') return key;
  const clientCa = files.clientCa === undefined ? undefined : read(files.clientCa);
  if (typeof clientCa === 'string') return clientCa;

  const chain = certificates(cert, files.cert);
  if (typeof chain === 'string') return chain;
  const leaf = chain[0]!;
  const notAfter = new Date(leaf.validTo);
  if (!(notAfter > now)) return `${files.cert.env}: the certificate in ${files.cert.path} expired on ${notAfter.toISOString()}`;
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    return `${files.key.env}: ${files.key.path} holds no usable private key (PEM, unencrypted; truncated or still being written?)`;
  }
  if (!leaf.checkPrivateKey(privateKey)) return `${files.key.env}: the key in ${files.key.path} does not match the certificate in ${files.cert.env} (${files.cert.path})`;
  if (clientCa !== undefined) {
    const cas = certificates(clientCa, files.clientCa!);
    if (typeof cas === 'string') return cas;
  }
  const contents = { cert, key, clientCa, leaf };
  try {
    tls.createSecureContext(contextOptions(contents));
  } catch (err) {
    return `${files.cert.env}: the files cannot serve TLS: ${(err as Error).message}`;
  }
  return contents;
}

const BEGIN = '-----BEGIN CERTIFICATE-----';
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

/** The PEM certificates of a file; a file cut inside one (half-written) is a problem, not a shorter chain. */
function certificates(pem: Buffer, file: FileSetting): X509Certificate[] | string {
  const text = pem.toString('latin1');
  const begun = text.split(BEGIN).length - 1;
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (begun === 0) return `${file.env}: ${file.path} holds no PEM certificate`;
  if (blocks.length !== begun) return `${file.env}: ${file.path} ends inside a certificate (truncated or still being written?)`;
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch {
    return `${file.env}: ${file.path} holds a certificate that cannot be parsed`;
  }
}

function contextOptions(c: Omit<Contents, 'leaf'>): tls.SecureContextOptions {
  return { cert: c.cert, key: c.key, ...(c.clientCa === undefined ? {} : { ca: c.clientCa }) };
}

/** Whether HOST:PORT binds loopback only (127.0.0.0/8, ::1, localhost): the one place plaintext is not a warning. */
export function isLoopback(address: string): boolean {
  const host = address.slice(0, address.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

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
  private current: Contents;
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
    return { ...contextOptions(this.current), requestCert: mutual, rejectUnauthorized: mutual };
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
    return { listener: this.listener, subject: leaf.subject, notAfter: new Date(leaf.validTo).toISOString(), sha256: leaf.fingerprint256, mutual: this.files.clientCa !== undefined };
  }

  private reload(): void {
    const loaded = loadTlsFiles(this.files);
    if (typeof loaded === 'string') {
      if (loaded !== this.refused) this.logger.error('TLS files not loaded: still serving the previous ones', { listener: this.listener, problem: loaded });
      this.refused = loaded;
      return;
    }
    this.refused = undefined;
    const c = this.current;
    if (loaded.cert.equals(c.cert) && loaded.key.equals(c.key) && sameBuffer(loaded.clientCa, c.clientCa)) return;
    try {
      for (const server of this.servers) server.setSecureContext(contextOptions(loaded));
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
