/**
 * Cuts an HTTP/2 connection that sends more control traffic than calls: bytes read beyond its
 * calls' messages and headers, over a bound per second. nghttp2 (in Node) already closes a
 * connection whose PINGs or SETTINGS it must answer faster than they are read, and bounds rapid
 * resets and CONTINUATION; WINDOW_UPDATE and PRIORITY frames need no answer, so a flood of them
 * (tens of millions a second on loopback) was parsed for as long as the client liked, taking the
 * CPU from every other call. Like nghttp2's "glitch" limit and Go x/net/http2's limits on frames
 * that are not requests, a connection past the bound gets GOAWAY ENHANCE_YOUR_CALM and is closed.
 *
 * Frames are measured as bytes (a control frame is 9 to 17 bytes; 13 for WINDOW_UPDATE and
 * RST_STREAM, 14 for PRIORITY): the sessions' bytes come from nghttp2 without passing through
 * JavaScript, and putting a frame parser in that path costs about a third of the throughput.
 */
import * as http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log';

/** Bytes a call may take beyond its messages: HEADERS (HPACK), frame headers, the client's WINDOW_UPDATEs and PINGs for it. */
export const CALL_ALLOWANCE_BYTES = 1_024;
/** Checked this often, as a token bucket (burst: one second's worth), so a flood is cut within about this long (BENCH_ONLY=control-flood make bench). */
const CHECK_INTERVAL_MS = 10;
/** After the GOAWAY, time for it to leave before the connection is closed. */
const FLUSH_MS = 20;

interface Watched {
  /** session.socket.bytesRead at the last check. */
  bytes: number;
  /** Request message bytes (DATA payloads) and calls since the last check. */
  data: number;
  calls: number;
  /** Control bytes the connection may still send: refilled at the limit per second, up to one second's worth. */
  budget: number;
}

export class ControlFloodGuard {
  private readonly sessions = new Map<http2.ServerHttp2Session, Watched>();
  private readonly timer: NodeJS.Timeout;
  private cut = 0;

  constructor(
    http2Server: http2.Http2Server,
    /** Control bytes a connection may send in a second, beyond CALL_ALLOWANCE_BYTES per call. */
    private readonly maxControlBytesPerSecond: number,
    private readonly logger: Logger,
  ) {
    http2Server.on('session', (session: http2.ServerHttp2Session) => {
      const w: Watched = { bytes: bytesRead(session), data: 0, calls: 0, budget: maxControlBytesPerSecond };
      this.sessions.set(session, w);
      session.once('close', () => this.sessions.delete(session));
      // Node's own listener (grpc-js's handler) runs first and pauses the stream, so this one neither starts nor loses data.
      session.on('stream', (stream: http2.ServerHttp2Stream) => {
        w.calls++;
        stream.on('data', (chunk: Buffer) => (w.data += chunk.length));
      });
    });
    this.timer = setInterval(() => this.check(), CHECK_INTERVAL_MS).unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  private check(): void {
    const refill = (this.maxControlBytesPerSecond * CHECK_INTERVAL_MS) / 1000;
    for (const [session, w] of this.sessions) {
      const bytes = bytesRead(session);
      const control = bytes - w.bytes - w.data - w.calls * CALL_ALLOWANCE_BYTES;
      w.bytes = bytes;
      w.data = w.calls = 0;
      w.budget = Math.min(this.maxControlBytesPerSecond, w.budget + refill) - Math.max(0, control);
      if (w.budget >= 0 || session.destroyed) continue;
      this.sessions.delete(session);
      session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      // Read no more of it while the GOAWAY leaves: until the close, nghttp2 went on parsing the flood
      // for as long again as it took to catch it. (destroy() at once would not send the GOAWAY.)
      stopReading(session);
      setTimeout(() => session.destroy(), FLUSH_MS).unref();
      if (this.cut++ === 0) {
        this.logger.warn(
          'closed a connection sending control frames (WINDOW_UPDATE, PRIORITY, PING, SETTINGS, RST_STREAM) beyond its calls; more are counted once a minute',
          {
            controlBytes: control,
            intervalMs: CHECK_INTERVAL_MS,
            limit: this.maxControlBytesPerSecond,
            peer: session.socket?.remoteAddress,
          },
        );
        setTimeout(() => this.report(), 60_000).unref();
      }
    }
  }

  private report(): void {
    if (this.cut > 1) this.logger.warn('connections closed for flooding control frames', { connections: this.cut - 1, intervalMs: 60_000 });
    this.cut = 0;
  }
}

/** Stops reading the connection's socket (libuv readStop); Node's http2 socket proxy refuses pause(). */
function stopReading(session: http2.ServerHttp2Session): void {
  const handle = (session.socket as unknown as { _handle?: { readStop?: () => unknown } } | undefined)?._handle;
  handle?.readStop?.();
}

function bytesRead(session: http2.ServerHttp2Session): number {
  return session.socket?.bytesRead ?? 0;
}

/**
 * The http2 server grpc-js made for the connection injector created last: grpc-js keeps it in a
 * private map (1.14: Server#http2Servers), the only way to its sessions. Undefined if that changed.
 */
export function injectorHttp2Server(server: grpc.Server): http2.Http2Server | undefined {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) return undefined;
  const last = [...servers.keys()].at(-1) as unknown;
  return last instanceof Object && typeof (last as http2.Http2Server).on === 'function' ? (last as http2.Http2Server) : undefined;
}
