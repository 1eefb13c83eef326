/**
 * The TCP listener in front of grpc-js: it bounds how many connections are open at once and
 * closes a connection that has not sent the HTTP/2 preface within the handshake timeout.
 */
import * as net from 'node:net';
import type { ConnectionInjector } from '@grpc/grpc-js';
import type { Logger } from '../log';

/** The client preface (24 bytes) and the header of the SETTINGS frame that must follow it. */
const HANDSHAKE_BYTES = 24 + 9;
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
  private readonly refused = { overLimit: 0, handshakeTimeout: 0 };
  private reportTimer: NodeJS.Timeout | undefined;

  constructor(injector: ConnectionInjector, limits: ListenerLimits, private readonly logger: Logger) {
    this.tcp = net.createServer((socket) => {
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
    });
    // Beyond it Node closes each new connection as soon as it is accepted.
    this.tcp.maxConnections = limits.maxConnections;
    this.tcp.on('drop', () => this.count('overLimit'));
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
    this.tcp.close();
    for (const socket of this.handshaking) if (socket.bytesRead < HANDSHAKE_BYTES) socket.destroy();
    clearTimeout(this.reportTimer);
  }

  private count(reason: 'overLimit' | 'handshakeTimeout'): void {
    this.refused[reason]++;
    this.reportTimer ??= setTimeout(() => {
      this.reportTimer = undefined;
      this.logger.warn('connections refused or closed by the connection limits', { ...this.refused, intervalMs: REPORT_INTERVAL_MS });
      this.refused.overLimit = 0;
      this.refused.handshakeTimeout = 0;
    }, REPORT_INTERVAL_MS).unref();
  }
}
