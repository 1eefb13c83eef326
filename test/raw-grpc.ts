/**
 * A raw HTTP/2 gRPC caller for hostile tests: it sends whatever frames and headers it is
 * given (no client library to refuse them) and reports what the server answered.
 */
import * as http2 from 'node:http2';

export const SCORE_HOSTS = '/ksmscorer.v1.HostScorerService/ScoreHosts';
export const SCORE_HOSTS_BATCH = '/ksmscorer.v1.HostScorerService/ScoreHostsBatch';
export const HEALTH_CHECK = '/grpc.health.v1.Health/Check';
export const HEALTH_WATCH = '/grpc.health.v1.Health/Watch';
export const REFLECTION_V1 = '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo';
export const REFLECTION_V1ALPHA = '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo';

/** A protobuf base-128 varint. */
export function varint(n: number): Buffer {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return Buffer.from(out);
}

/** A length-delimited protobuf field: tag byte, varint length, bytes. */
export const field = (tag: number, bytes: Buffer) => Buffer.concat([Buffer.from([tag]), varint(bytes.length), bytes]);

/** A gRPC length-prefixed message: flag byte, 4-byte big-endian length, payload. `length` may lie. */
export function grpcFrame(payload: Uint8Array, opts: { compressed?: boolean; length?: number } = {}): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(opts.compressed ? 1 : 0, 0);
  head.writeUInt32BE(opts.length ?? payload.length, 1);
  return Buffer.concat([head, payload]);
}

export interface RawAnswer {
  /** :status of the response headers; undefined if none came. */
  readonly httpStatus: number | undefined;
  /** grpc-status from the trailers (or a trailers-only answer); undefined if none came. */
  readonly grpcStatus: number | undefined;
  readonly grpcMessage: string | undefined;
  /** Response messages' bytes, unframed concatenation. */
  readonly body: Buffer;
  /** Why the stream ended without a status: RST_STREAM code, GOAWAY, socket error, timeout. */
  readonly ended: string | undefined;
}

export interface RawCallOptions {
  /** Extra request headers, e.g. { 'grpc-encoding': 'gzip' }. */
  readonly headers?: Record<string, string>;
  /** Gives up (and says `timeout`) after this long; every call is bounded. */
  readonly timeoutMs?: number;
  /** Leave the request stream open (no END_STREAM), as a slow or hostile client would. */
  readonly keepOpen?: boolean;
  /** An existing session to open the stream on; one is made (and closed) otherwise. */
  readonly session?: http2.ClientHttp2Session;
}

/** One POST to `path` on `address` (HOST:PORT) with `body` as the request stream. */
export async function rawCall(address: string, path: string, body: Buffer, opts: RawCallOptions = {}): Promise<RawAnswer> {
  const own = opts.session === undefined;
  const session = opts.session ?? http2.connect(`http://${address}`);
  session.on('error', () => {}); // reported through the stream's close below
  try {
    return await new Promise<RawAnswer>((resolve) => {
      const chunks: Buffer[] = [];
      let httpStatus: number | undefined;
      let grpcStatus: number | undefined;
      let grpcMessage: string | undefined;
      // A status ends the call, even when this side of the stream was left open.
      const take = (h: http2.IncomingHttpHeaders) => {
        if (h[':status'] !== undefined) httpStatus = Number(h[':status']);
        if (h['grpc-status'] === undefined) return;
        grpcStatus = Number(h['grpc-status']);
        if (typeof h['grpc-message'] === 'string') grpcMessage = decodeURIComponent(h['grpc-message']);
        finish(undefined);
      };
      let req: http2.ClientHttp2Stream;
      try {
        req = session.request({
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
          ...opts.headers,
        });
      } catch (err) {
        resolve({ httpStatus, grpcStatus, grpcMessage, body: Buffer.alloc(0), ended: `request refused: ${(err as Error).message}` });
        return;
      }
      let done = false;
      const finish = (ended: string | undefined) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
        resolve({
          httpStatus,
          grpcStatus,
          grpcMessage,
          body: Buffer.concat(chunks),
          ended: grpcStatus === undefined ? (ended ?? 'closed without status') : undefined,
        });
      };
      const timer = setTimeout(() => finish('timeout'), opts.timeoutMs ?? 5_000);
      req.on('response', take);
      req.on('trailers', take);
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('error', (err) => finish(`error: ${err.message}`));
      req.on('close', () => finish(req.rstCode ? `RST_STREAM ${req.rstCode}` : undefined));
      req.write(body);
      if (!opts.keepOpen) req.end();
    });
  } finally {
    if (own) session.close();
  }
}
