/**
 * The TCP listener in front of grpc-js: it bounds how many connections are open at once (at the
 * cap the quietest one makes room), ends TLS when it is on (with rotation), and closes a connection
 * that has not sent the HTTP/2 preface within the handshake timeout.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { ConnectionInjector } from '@grpc/grpc-js';
import type { Logger } from '../log';
import { TlsCredentials, type TlsFiles } from '../tls';

/** The client preface (24 bytes) and the header of the SETTINGS frame that must follow it. */
const HANDSHAKE_BYTES = 24 + 9;
/** At the connection cap, how long a connection must move no byte to be the one that makes room. */
const QUIET_MS = 100;
/** New connections that may wait for room at once; beyond, they are refused at once. */
const MAX_WAITING = 16;
/** On shutdown, how long a connection is given to send what was written to it (GOAWAY, a last answer) before it is closed. */
const FLUSH_MS = 100;
/** Refused and timed-out connections are logged as counts, at most this often. */
const REPORT_INTERVAL_MS = 10_000;

export interface ListenerLimits {
  readonly maxConnections: number;
  readonly handshakeTimeoutMs: number;
  /** undefined: plaintext. */
  readonly tls: TlsFiles | undefined;
}

export class ConnectionListener {
  private readonly tcp: net.Server;
  /** Ends TLS on the connections the cap admitted (it listens on nothing itself); undefined: plaintext. */
  private readonly tls: tls.Server | undefined;
  private readonly credentials: TlsCredentials | undefined;
  /** Connections that have not sent the HTTP/2 preface yet, not handed to grpc-js: closed at once on shutdown. */
  private readonly handshaking = new Set<net.Socket>();
  private readonly refused = { overLimit: 0, handshakeTimeout: 0, evictedQuiet: 0, tlsFailed: 0 };
  /** Open connections (TCP sockets, also under TLS), oldest first. */
  private readonly open = new Set<net.Socket>();
  /** New connections waiting at the cap for a quiet one to make room. */
  private waiting = 0;
  private closed = false;
  private reportTimer: NodeJS.Timeout | undefined;

  constructor(private readonly injector: ConnectionInjector, private readonly limits: ListenerLimits, private readonly logger: Logger) {
    if (limits.tls !== undefined) {
      // TLS ends here, not in grpc-js (see TlsCredentials), so the cap and the timeouts see every
      // connection the same way. The handshake timeout applies twice: to the TLS handshake, then
      // to the HTTP/2 preface.
      this.credentials = new TlsCredentials(limits.tls, logger, 'gRPC');
      this.tls = tls.createServer({ ...this.credentials.serverOptions(), ALPNProtocols: ['h2'], handshakeTimeout: limits.handshakeTimeoutMs });
      this.credentials.watch(this.tls);
      this.tls.on('secureConnection', (socket: tls.TLSSocket) => this.awaitPreface(socket));
      // A handshake that timed out, a refused client certificate, a client speaking plaintext: Node reports them, closing is ours.
      this.tls.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
        socket.destroy();
        this.count(err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'handshakeTimeout' : 'tlsFailed');
      });
    }
    this.tcp = net.createServer((socket) => {
      if (this.open.size < limits.maxConnections) return this.admit(socket);
      // At the cap, the oldest connection that stays quiet for a moment makes room (its client reconnects when
      // it needs to), so connections that do nothing cannot lock real clients out; when all are busy, it is refused.
      if (this.waiting >= MAX_WAITING) {
        socket.destroy();
        return this.count('overLimit');
      }
      this.waiting++;
      void this.evictQuiet().then((evicted) => {
        this.waiting--;
        if (evicted && !this.closed) return this.admit(socket);
        socket.destroy();
        this.count('overLimit');
      });
    });
  }

  /** Listens on `address` (HOST:PORT or [IPv6]:PORT; port 0 picks one) and returns the port. */
  listen(address: string): Promise<number> {
    const at = address.lastIndexOf(':');
    const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
    const port = Number(address.slice(at + 1));
    return new Promise((resolve, reject) => {
      this.tcp.once('error', reject);
      this.tcp.listen({ host, port }, () => {
        this.tcp.off('error', reject);
        if (this.credentials !== undefined) this.logger.info('gRPC listener serves TLS', this.credentials.describe());
        resolve((this.tcp.address() as net.AddressInfo).port);
      });
    });
  }

  /**
   * Stops accepting and closes the connections still in their handshake; grpc-js closes the rest.
   * A TLS handshake still running is closed when it ends (or by its timeout).
   */
  close(): void {
    this.closed = true;
    this.tcp.close();
    this.credentials?.close();
    for (const socket of this.handshaking) socket.destroy();
    clearTimeout(this.reportTimer);
  }

  /**
   * Closes the open connections whose peer (HOST:PORT, as grpc-js's call.getPeer() names it) `which`
   * selects, once what was written to them has had a moment to leave (the GOAWAY, a call's last frames).
   */
  closeConnections(which: (peer: string) => boolean): void {
    const chosen = [...this.open].filter((socket) => which(`${socket.remoteAddress}:${socket.remotePort}`));
    if (chosen.length > 0) setTimeout(() => chosen.forEach((socket) => socket.destroy()), FLUSH_MS);
  }

  /** A connection within the cap: counted while open, then TLS (when on) and the preface. */
  private admit(socket: net.Socket): void {
    if (socket.destroyed) return;
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    if (this.tls === undefined) return this.awaitPreface(socket);
    // A reset of the TCP socket under TLS is only a close to us; the TLS socket sees it too.
    socket.on('error', () => {});
    this.tls.emit('connection', socket);
  }

  /**
   * Hands `socket` (plaintext, or TLS past its handshake) to grpc-js once the HTTP/2 preface is in,
   * and closes it if that takes longer than the handshake timeout. Waiting before handing it over
   * keeps the socket ours to close: an http2 session given a TLS socket that has sent nothing keeps
   * the connection open when the socket is destroyed. The bytes read go back for the session to read first.
   */
  private awaitPreface(socket: net.Socket): void {
    if (this.closed) return void socket.destroy();
    this.handshaking.add(socket);
    const received: Buffer[] = [];
    let bytes = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      this.count('handshakeTimeout');
    }, this.limits.handshakeTimeoutMs);
    const settle = () => {
      clearTimeout(timer);
      this.handshaking.delete(socket);
      socket.off('data', onData);
      socket.off('close', settle);
    };
    const onData = (chunk: Buffer) => {
      received.push(chunk);
      bytes += chunk.length;
      if (bytes < HANDSHAKE_BYTES) return;
      settle();
      socket.pause();
      socket.unshift(Buffer.concat(received));
      this.injector.injectConnection(socket);
    };
    // A reset before the preface is only a close to us; after it the http2 session handles errors
    // (and a TLS socket's are its owner's to handle, nodejs/node#35824). An error closes the
    // connection: a refused TLS renegotiation (ERR_TLS_SESSION_ATTACK, see src/tls.ts) is one.
    socket.on('error', () => socket.destroy());
    socket.on('data', onData);
    socket.once('close', settle);
  }

  /** Closes the oldest connection that moves no byte for QUIET_MS; false when every one did. */
  private async evictQuiet(): Promise<boolean> {
    // TCP sockets: under TLS they still count the bytes on the wire, and destroying one closes the connection.
    const traffic = (socket: net.Socket) => socket.bytesRead + socket.bytesWritten;
    const before = new Map([...this.open].map((socket) => [socket, traffic(socket)]));
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    for (const [socket, bytes] of before) {
      if (socket.destroyed || !this.open.has(socket)) return true; // one closed meanwhile: room anyway
      if (traffic(socket) !== bytes) continue;
      socket.destroy();
      this.open.delete(socket);
      this.count('evictedQuiet');
      return true;
    }
    return false;
  }

  private count(reason: keyof ConnectionListener['refused']): void {
    this.refused[reason]++;
    this.reportTimer ??= setTimeout(() => {
      this.reportTimer = undefined;
      this.logger.warn('connections refused or closed by the connection limits or in the TLS handshake', { ...this.refused, intervalMs: REPORT_INTERVAL_MS });
      this.refused.overLimit = this.refused.handshakeTimeout = this.refused.evictedQuiet = this.refused.tlsFailed = 0;
    }, REPORT_INTERVAL_MS).unref();
  }
}
