/**
 * The TCP listener in front of grpc-js: it bounds how many connections are open at once (at the
 * cap the quietest one makes room), ends TLS when it is on (with rotation), and closes a connection
 * that has not sent the HTTP/2 preface within the handshake timeout.
 *
 * grpc-js binds its own http2 server, so it could not share the bind and cap of the HTTP listeners
 * (src/net/): the service binds this TCP server instead, with the same helpers, and hands grpc-js
 * each connection past the cap, TLS and the preface (ConnectionInjector).
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { ConnectionInjector } from '@grpc/grpc-js';
import type { TlsFiles } from '../config/connection';
import type { HostPort } from '../config/kinds';
import type { Logger } from '../log';
import { bind } from '../net/bind';
import { ConnectionCap } from '../net/connection-cap';
import { TlsCredentials } from '../net/tls';

/** The client preface (24 bytes) and the header of the SETTINGS frame that must follow it. */
const HANDSHAKE_BYTES = 24 + 9;
/** At the connection cap, how long a connection must move no byte to be the one that makes room. */
const QUIET_MS = 100;
/** New connections that may wait for room at once; beyond, they are refused at once. */
const MAX_WAITING = 16;
/** On shutdown, how long a connection is given to send what was written to it (GOAWAY, a last answer) before it is closed. */
const FLUSH_MS = 100;

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
  /** Open connections (TCP sockets, also under TLS), with what was refused or closed. */
  private readonly cap: ConnectionCap<'handshakeTimeout' | 'evictedQuiet' | 'tlsFailed'>;
  /** New connections waiting at the cap for a quiet one to make room. */
  private waiting = 0;
  private closed = false;

  constructor(
    private readonly injector: ConnectionInjector,
    private readonly limits: ListenerLimits,
    private readonly logger: Logger,
  ) {
    if (limits.tls !== undefined) {
      // TLS ends here, not in grpc-js (see TlsCredentials), so the cap and the timeouts see every
      // connection the same way. The handshake timeout applies twice: to the TLS handshake, then
      // to the HTTP/2 preface.
      this.credentials = new TlsCredentials(limits.tls, logger, 'gRPC');
      this.tls = tls.createServer({
        ...this.credentials.serverOptions(),
        ALPNProtocols: ['h2'],
        handshakeTimeout: limits.handshakeTimeoutMs,
      });
      this.credentials.watch(this.tls);
      this.tls.on('secureConnection', (socket: tls.TLSSocket) => this.awaitPreface(socket));
      // A handshake that timed out, a refused client certificate, a client speaking plaintext: Node reports them, closing is ours.
      this.tls.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
        socket.destroy();
        this.cap.count(err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'handshakeTimeout' : 'tlsFailed');
      });
    }
    // At the cap, the oldest connection that stays quiet for a moment makes room (its client reconnects when
    // it needs to), so connections that do nothing cannot lock real clients out; when all are busy, it is refused.
    const makeRoom = () => {
      if (this.waiting >= MAX_WAITING) return false;
      this.waiting++;
      return this.evictQuiet().finally(() => this.waiting--);
    };
    const report = {
      logger,
      message: 'connections refused or closed by the connection limits or in the TLS handshake',
      events: ['overLimit', 'handshakeTimeout', 'evictedQuiet', 'tlsFailed'] as const,
    };
    this.cap = new ConnectionCap(limits.maxConnections, makeRoom, report);
    this.tcp = net.createServer();
    this.cap.attach(this.tcp, (socket) => this.admit(socket));
  }

  /** Listens on `at` (port 0 picks one) and returns the port. */
  async listen(at: HostPort): Promise<number> {
    const port = await bind(this.tcp, at);
    if (this.credentials !== undefined) this.logger.info('gRPC listener serves TLS', this.credentials.describe());
    return port;
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
    this.cap.stop();
  }

  /**
   * Closes the open connections whose peer (HOST:PORT, as grpc-js's call.getPeer() names it) `which`
   * selects, once what was written to them has had a moment to leave (the GOAWAY, a call's last frames).
   */
  closeConnections(which: (peer: string) => boolean): void {
    const chosen = [...this.cap.sockets].filter((socket) => which(`${socket.remoteAddress}:${socket.remotePort}`));
    if (chosen.length > 0) setTimeout(() => chosen.forEach((socket) => socket.destroy()), FLUSH_MS);
  }

  /** A connection within the cap: TLS (when on), then the preface. */
  private admit(socket: net.Socket): void {
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
      this.cap.count('handshakeTimeout');
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
    // connection: a refused TLS renegotiation (ERR_TLS_SESSION_ATTACK, see src/net/tls.ts) is one.
    socket.on('error', () => socket.destroy());
    socket.on('data', onData);
    socket.once('close', settle);
  }

  /** Closes the oldest connection that moves no byte for QUIET_MS; false when every one did. */
  private async evictQuiet(): Promise<boolean> {
    // TCP sockets: under TLS they still count the bytes on the wire, and destroying one closes the connection.
    const traffic = (socket: net.Socket) => socket.bytesRead + socket.bytesWritten;
    const before = new Map([...this.cap.sockets].map((socket) => [socket, traffic(socket)]));
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    for (const [socket, bytes] of before) {
      if (socket.destroyed || !this.cap.sockets.has(socket)) return true; // one closed meanwhile: room anyway
      if (traffic(socket) !== bytes) continue;
      this.cap.close(socket, 'evictedQuiet');
      return true;
    }
    return false;
  }
}
