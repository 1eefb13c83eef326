/**
 * The TCP listener in front of grpc-js: it bounds how many connections are open at once (at the
 * cap the quietest one makes room) and closes a connection that has not sent the HTTP/2 preface
 * within the handshake timeout.
 */
import * as net from 'node:net';
import type { ConnectionInjector } from '@grpc/grpc-js';
import type { Logger } from '../log';

/** The client preface (24 bytes) and the header of the SETTINGS frame that must follow it. */
const HANDSHAKE_BYTES = 24 + 9;
/** At the connection cap, how long a connection must move no byte to be the one that makes room. */
const QUIET_MS = 100;
/** New connections that may wait for room at once; beyond, they are refused at once. */
const MAX_WAITING = 16;
/** Refused and timed-out connections are logged as counts, at most this often. */
const REPORT_INTERVAL_MS = 10_000;

export interface ListenerLimits {
  readonly maxConnections: number;
  readonly handshakeTimeoutMs: number;
}

export class ConnectionListener {
  private readonly tcp: net.Server;
  /** Connections whose handshake timer is still running: those still silent are closed at once on shutdown. */
  private readonly handshaking = new Set<net.Socket>();
  private readonly refused = { overLimit: 0, handshakeTimeout: 0, evictedQuiet: 0 };
  /** Open connections, oldest first. */
  private readonly open = new Set<net.Socket>();
  /** New connections waiting at the cap for a quiet one to make room. */
  private waiting = 0;
  private closed = false;
  private reportTimer: NodeJS.Timeout | undefined;

  constructor(injector: ConnectionInjector, limits: ListenerLimits, private readonly logger: Logger) {
    const accept = (socket: net.Socket) => {
      if (socket.destroyed) return;
      this.open.add(socket);
      socket.once('close', () => this.open.delete(socket));
      this.handshaking.add(socket);
      // Node's http2 session reads the socket from here on; the byte count is all we look at.
      const timer = setTimeout(() => {
        this.handshaking.delete(socket);
        if (socket.bytesRead < HANDSHAKE_BYTES) {
          socket.destroy();
          this.count('handshakeTimeout');
        }
      }, limits.handshakeTimeoutMs);
      socket.once('close', () => {
        clearTimeout(timer);
        this.handshaking.delete(socket);
      });
      injector.injectConnection(socket);
    };
    this.tcp = net.createServer((socket) => {
      if (this.open.size < limits.maxConnections) return accept(socket);
      // At the cap, the oldest connection that stays quiet for a moment makes room (its client reconnects when
      // it needs to), so connections that do nothing cannot lock real clients out; when all are busy, it is refused.
      if (this.waiting >= MAX_WAITING) {
        socket.destroy();
        return this.count('overLimit');
      }
      this.waiting++;
      void this.evictQuiet().then((evicted) => {
        this.waiting--;
        if (evicted && !this.closed) return accept(socket);
        socket.destroy();
        this.count('overLimit');
      });
    });
  }

  /** Closes the oldest connection that moves no byte for QUIET_MS; false when every one did. */
  private async evictQuiet(): Promise<boolean> {
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

  /** Listens on `address` (HOST:PORT or [IPv6]:PORT; port 0 picks one) and returns the port. */
  listen(address: string): Promise<number> {
    const at = address.lastIndexOf(':');
    const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
    const port = Number(address.slice(at + 1));
    return new Promise((resolve, reject) => {
      this.tcp.once('error', reject);
      this.tcp.listen({ host, port }, () => {
        this.tcp.off('error', reject);
        resolve((this.tcp.address() as net.AddressInfo).port);
      });
    });
  }

  /** Stops accepting and closes the connections still in their handshake; grpc-js closes the rest. */
  close(): void {
    this.closed = true;
    this.tcp.close();
    for (const socket of this.handshaking) if (socket.bytesRead < HANDSHAKE_BYTES) socket.destroy();
    clearTimeout(this.reportTimer);
  }

  private count(reason: keyof ConnectionListener['refused']): void {
    this.refused[reason]++;
    this.reportTimer ??= setTimeout(() => {
      this.reportTimer = undefined;
      this.logger.warn('connections refused or closed by the connection limits', { ...this.refused, intervalMs: REPORT_INTERVAL_MS });
      this.refused.overLimit = this.refused.handshakeTimeout = this.refused.evictedQuiet = 0;
    }, REPORT_INTERVAL_MS).unref();
  }
}
