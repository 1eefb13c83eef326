/**
 * The cap on the connections one listener holds open, the same for the gRPC, XML-RPC and /metrics
 * listeners: a new TCP connection within the cap is admitted and counted until it closes; at the
 * cap the listener's policy closes one to make room, and the new one is admitted, or finds none,
 * and the new one is refused. Refusing at once (server.maxConnections) would let idle connections
 * lock real clients out, so each listener says which connection makes room: the HTTP listeners the
 * one with the least progress on its request (http-guard.ts), the gRPC one, which cannot see
 * requests inside HTTP/2, the oldest that stays quiet for a moment (server/listener.ts).
 * What was refused or closed is logged as counts, at most every REPORT_INTERVAL_MS.
 */
import type { Server, Socket } from 'node:net';
import type { Logger } from '../log';

const REPORT_INTERVAL_MS = 10_000;

export interface CapReport<E extends string> {
  readonly logger: Logger;
  readonly message: string;
  /** Logged with the counts (e.g. which listener). */
  readonly fields?: Record<string, unknown>;
  /** What is counted, in the order logged; `overLimit` is a connection refused at the cap. */
  readonly events: readonly (E | 'overLimit')[];
}

export class ConnectionCap<E extends string> {
  /** Open connections (TCP sockets, also under TLS), oldest first. */
  private readonly open = new Set<Socket>();
  private readonly counts: Record<E | 'overLimit', number>;
  private reportTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly max: number,
    /** At the cap: close a connection (with close()) and say true, or say false; may take a moment. */
    private readonly makeRoom: () => boolean | Promise<boolean>,
    private readonly report: CapReport<E>,
  ) {
    this.counts = Object.fromEntries(report.events.map((e) => [e, 0])) as Record<E | 'overLimit', number>;
  }

  /** Caps the connections of `server`; `admitted` gets each one within the cap. */
  attach(server: Server, admitted: (socket: Socket) => void): void {
    server.on('connection', (socket: Socket) => this.accept(socket, admitted));
  }

  /** The open connections, oldest first. */
  get sockets(): ReadonlySet<Socket> {
    return this.open;
  }

  /** Closes `socket` at once, no longer counted, and counts why. */
  close(socket: Socket, why: E): void {
    socket.destroy();
    this.open.delete(socket);
    this.count(why);
  }

  count(why: E | 'overLimit'): void {
    this.counts[why]++;
    this.reportTimer ??= setTimeout(() => {
      this.reportTimer = undefined;
      this.report.logger.warn(this.report.message, { ...this.report.fields, ...this.counts, intervalMs: REPORT_INTERVAL_MS });
      for (const k of Object.keys(this.counts) as (E | 'overLimit')[]) this.counts[k] = 0;
    }, REPORT_INTERVAL_MS).unref();
  }

  /** No more connections are admitted (one waiting for room is refused); the report is dropped. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.reportTimer);
  }

  private accept(socket: Socket, admitted: (socket: Socket) => void): void {
    if (this.open.size < this.max) return this.admit(socket, admitted);
    const room = this.makeRoom();
    if (room === true) return this.admit(socket, admitted);
    if (room === false) return this.refuse(socket);
    void room.then((made) => (made && !this.stopped ? this.admit(socket, admitted) : this.refuse(socket)));
  }

  private admit(socket: Socket, admitted: (socket: Socket) => void): void {
    if (socket.destroyed) return;
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    admitted(socket);
  }

  private refuse(socket: Socket): void {
    socket.destroy();
    this.count('overLimit');
  }
}
