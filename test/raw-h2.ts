/**
 * HTTP/2 at the frame level over a plain TCP socket, for tests that must break the rules a
 * real client keeps (more streams than the server allows, ping floods, random frames).
 */
import * as net from 'node:net';

export const FRAME = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
} as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
/** HTTP/2 error codes seen in RST_STREAM and GOAWAY. */
export const H2_ERROR = { NO_ERROR: 0x0, PROTOCOL_ERROR: 0x1, REFUSED_STREAM: 0x7, CANCEL: 0x8, ENHANCE_YOUR_CALM: 0xb } as const;
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function frame(type: number, flags: number, streamId: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK "literal header field without indexing, new name", no Huffman: enough for short headers. */
export function hpack(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const str = (s: string) => {
    const b = Buffer.from(s, 'latin1');
    if (b.length > 126) throw new Error('header too long for this encoder');
    return Buffer.concat([Buffer.from([b.length]), b]);
  };
  for (const [k, v] of Object.entries(headers)) parts.push(Buffer.from([0x00]), str(k), str(v));
  return Buffer.concat(parts);
}

/** The request headers of a gRPC call on `path`. */
export const grpcHeaders = (path: string, extra: Record<string, string> = {}): Buffer =>
  hpack({
    ':method': 'POST',
    ':scheme': 'http',
    ':path': path,
    ':authority': 'localhost',
    'content-type': 'application/grpc',
    te: 'trailers',
    ...extra,
  });

export interface ReceivedFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/** A TCP connection that writes raw frames and records the frames the server sends back. */
export class RawH2Connection {
  readonly frames: ReceivedFrame[] = [];
  closed = false;
  private pending = Buffer.alloc(0);
  private readonly closedPromise: Promise<void>;

  /** Whether this side sent the preface; only then are the server's SETTINGS acknowledged. */
  private spoke = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => this.parse(d));
    socket.on('error', () => {}); // a reset by the server is an outcome the tests look at, not a failure
    this.closedPromise = new Promise((resolve) => socket.on('close', () => ((this.closed = true), resolve())));
  }

  /** Connects; with `handshake` (the default) sends the preface and an empty SETTINGS, and ACKs the server's. */
  static async open(port: number, opts: { handshake?: boolean } = {}): Promise<RawH2Connection> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const conn = new RawH2Connection(socket);
    if (opts.handshake ?? true) {
      conn.spoke = true;
      conn.write(PREFACE, frame(FRAME.SETTINGS, 0, 0));
    }
    return conn;
  }

  write(...chunks: Buffer[]): boolean {
    return !this.socket.destroyed && this.socket.write(Buffer.concat(chunks));
  }

  /** Resolves true when the server has closed the connection, false if it is still open after `ms`. */
  async waitClosed(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      this.closedPromise.then(() => true),
      new Promise<false>((r) => (timer = setTimeout(() => r(false), ms))),
    ]);
    clearTimeout(timer);
    return closed;
  }

  /** The error code of the server's GOAWAY, if it sent one. */
  goawayCode(): number | undefined {
    const g = this.frames.find((f) => f.type === FRAME.GOAWAY);
    return g === undefined ? undefined : g.payload.readUInt32BE(4);
  }

  /** RST_STREAM error codes the server sent, by stream id. */
  resets(): Map<number, number> {
    return new Map(this.frames.filter((f) => f.type === FRAME.RST_STREAM).map((f) => [f.streamId, f.payload.readUInt32BE(0)]));
  }

  destroy(): void {
    this.socket.destroy();
  }

  private parse(data: Buffer): void {
    this.pending = Buffer.concat([this.pending, data]);
    while (this.pending.length >= 9) {
      const length = this.pending.readUIntBE(0, 3);
      if (this.pending.length < 9 + length) return;
      const f = {
        type: this.pending[3]!,
        flags: this.pending[4]!,
        streamId: this.pending.readUInt32BE(5) & 0x7fffffff,
        payload: this.pending.subarray(9, 9 + length),
      };
      this.pending = this.pending.subarray(9 + length);
      this.frames.push(f);
      if (this.spoke && f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK)) this.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
    }
  }
}

/**
 * Writes `batch` over and over as fast as the connection takes it (waiting for 'drain'), until the
 * server closes it or `stop()`; resolves with the bytes written when it ends.
 */
export function flood(conn: RawH2Connection, batch: Buffer): { stop(): void; done: Promise<number> } {
  let stopped = false;
  let written = 0;
  const done = new Promise<number>((resolve) => {
    const pump = () => {
      while (!stopped && !conn.closed && !conn.socket.destroyed) {
        written += batch.length;
        if (!conn.socket.write(batch)) return void conn.socket.once('drain', pump);
      }
      resolve(written);
    };
    conn.socket.once('close', () => resolve(written));
    pump();
  });
  return { stop: () => (stopped = true), done };
}

/** WINDOW_UPDATE (connection, increment 1) and PRIORITY frames (on idle streams), `count` of each: control frames and no request. */
export function controlFrames(count: number): Buffer {
  const increment = Buffer.alloc(4);
  increment.writeUInt32BE(1);
  const priority = Buffer.from([0, 0, 0, 0, 15]); // depends on stream 0, weight 16
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) frames.push(frame(FRAME.WINDOW_UPDATE, 0, 0, increment), frame(FRAME.PRIORITY, 0, 2 * i + 101, priority));
  return Buffer.concat(frames);
}
