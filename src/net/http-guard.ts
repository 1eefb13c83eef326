/**
 * Guards an HTTP/1.1 listener (http or https) on progress, not only on a count:
 * - a request's headers must arrive within a deadline that a minimum transfer rate extends
 *   (Apache mod_reqtimeout's `header=...,MinRate`), and silent connections are closed after an
 *   idle timeout;
 * - at the connection cap the connection that shows the least progress makes room for the new
 *   one: the one idle the longest first, then the one furthest behind the minimum rate (or least
 *   ahead of it, a new connection credited a moment for its request to arrive). A connection
 *   whose request is in (being answered) is never evicted; when every one is, the new
 *   connection is refused.
 * Progress is bytes on the TCP socket (under TLS, the TLS records), so slow or silent clients
 * cannot lock out the callers that send their requests at once.
 */
import type * as http from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../log';
import { ConnectionCap } from './connection-cap';

export interface ProgressLimits {
  /** Most TCP connections open at once (under TLS, handshakes included). */
  readonly maxConnections: number;
  /** Time a request's headers get from their first byte, before the minimum rate extends it. */
  readonly headerTimeoutMs: number;
  /** Most time headers may take, however steadily they arrive. */
  readonly headerMaxMs: number;
  /** Bytes per second: each `minRateBytes` bytes received buy one more second for the headers (and, in the listener, the body). */
  readonly minRateBytes: number;
  /** A connection with no request in progress (new, or between requests) is closed after this long. */
  readonly idleTimeoutMs: number;
}

/** At the cap, how long a connection must have sent nothing to count as idle (a new caller's request may be on its way). */
const IDLE_GRACE_MS = 100;
const CHECK_INTERVAL_MS = 250;

interface Connection {
  /** The TCP socket: its bytesRead counts the wire, and destroying it closes the connection (TLS too). */
  readonly socket: Socket;
  readonly key: string;
  /** When the current wait began: connected, TLS handshake done, or the last answer sent. */
  since: number;
  /** socket.bytesRead at `since`. */
  base: number;
  /** When bytes of a request were first seen since `since`; undefined: none yet. */
  readingSince: number | undefined;
  /** The request whose headers are in, until it is answered. */
  request: http.IncomingMessage | undefined;
}

type GuardEvent = 'evicted' | 'headerTimeout' | 'idleTimeout';

export class ProgressGuard {
  /** By remote address and port: an https request's socket is the TLS socket, not the TCP one counted here. */
  private readonly connections = new Map<string, Connection>();
  private readonly timer: NodeJS.Timeout;
  private readonly cap: ConnectionCap<GuardEvent>;

  constructor(
    server: http.Server,
    private readonly limits: ProgressLimits,
    logger: Logger,
    /** Which listener, for logs. */
    listener: string,
  ) {
    // At the cap, the connection with the least progress makes room; none when every one is being answered.
    const makeRoom = () => {
      const victim = this.leastProgress(performance.now());
      if (victim !== undefined) this.drop(victim, 'evicted');
      return victim !== undefined;
    };
    const report = {
      logger,
      message: 'connections closed or refused for lack of progress or at the connection cap',
      fields: { listener },
      events: ['evicted', 'overLimit', 'headerTimeout', 'idleTimeout'] as const,
    };
    this.cap = new ConnectionCap(limits.maxConnections, makeRoom, report);
    this.cap.attach(server, (socket) => this.admit(socket));
    // Under TLS the handshake's bytes are not a request: the wait for one starts when it is done.
    server.on('secureConnection', (tls: Socket) => {
      const c = this.connections.get(keyOf(tls));
      if (c !== undefined && c.request === undefined) this.restart(c);
    });
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const c = this.connections.get(keyOf(req.socket));
      if (c === undefined) return;
      c.request = req;
      res.once('close', () => {
        if (c.request === req) {
          c.request = undefined;
          this.restart(c);
        }
      });
    });
    this.timer = setInterval(() => this.check(), CHECK_INTERVAL_MS).unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.cap.stop();
  }

  /** A connection within the cap: watched for progress while open. */
  private admit(socket: Socket): void {
    const key = keyOf(socket);
    const c: Connection = { socket, key, since: performance.now(), base: 0, readingSince: undefined, request: undefined };
    this.connections.set(key, c);
    socket.once('close', () => {
      if (this.connections.get(key) === c) this.connections.delete(key);
    });
  }

  private restart(c: Connection): void {
    c.since = performance.now();
    c.base = c.socket.bytesRead;
    c.readingSince = undefined;
  }

  /**
   * Where `c` is: idle (no byte of a request yet), reading a request (headers and body are one
   * measure: how long since its first byte was seen, and how many bytes), or answering it.
   */
  private state(
    c: Connection,
    now: number,
  ): { kind: 'idle'; idleMs: number } | { kind: 'reading'; ms: number; bytes: number; header: boolean } | { kind: 'answering' } {
    if (c.request?.complete === true) return { kind: 'answering' };
    const bytes = c.socket.bytesRead - c.base;
    if (bytes === 0 && c.request === undefined) return { kind: 'idle', idleMs: now - c.since };
    c.readingSince ??= now;
    return { kind: 'reading', ms: now - c.readingSince, bytes, header: c.request === undefined };
  }

  /**
   * The connection to evict at the cap: one idle for over IDLE_GRACE_MS (the longest), else the one
   * furthest behind the minimum rate (or least ahead of it), where a connection just opened is
   * credited IDLE_GRACE_MS for its request to arrive. Undefined when every one is being answered.
   */
  private leastProgress(now: number): Connection | undefined {
    let best: { c: Connection; rank: number; behindMs: number } | undefined;
    for (const c of this.connections.values()) {
      const s = this.state(c, now);
      if (s.kind === 'answering') continue;
      const behindMs = s.kind === 'idle' ? s.idleMs - IDLE_GRACE_MS : s.ms - (s.bytes / this.limits.minRateBytes) * 1000;
      const rank = s.kind === 'idle' && behindMs >= 0 ? 0 : 1;
      if (best === undefined || rank < best.rank || (rank === best.rank && behindMs > best.behindMs)) best = { c, rank, behindMs };
    }
    return best?.c;
  }

  private check(): void {
    const now = performance.now();
    const { headerTimeoutMs, headerMaxMs, minRateBytes, idleTimeoutMs } = this.limits;
    for (const c of this.connections.values()) {
      const s = this.state(c, now);
      if (s.kind === 'idle' && s.idleMs > idleTimeoutMs) this.drop(c, 'idleTimeout');
      else if (s.kind === 'reading' && s.header && s.ms > Math.min(headerMaxMs, headerTimeoutMs + (s.bytes / minRateBytes) * 1000))
        this.drop(c, 'headerTimeout');
    }
  }

  private drop(c: Connection, why: GuardEvent): void {
    this.cap.close(c.socket, why);
    this.connections.delete(c.key);
  }
}

function keyOf(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}
