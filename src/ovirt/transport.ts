/**
 * The engine's HTTP transport, over undici: one connection pool with the
 * connect, header and body timeouts, a deadline on every request, gzip asked
 * for, every answer bounded (while streaming and while inflating) and decoded
 * (a large list off the main thread), every failure turned into a ScorerError
 * naming the endpoint. Counts every request by endpoint template and result,
 * and logs the first one (sent, and failed) so an engine that hangs is
 * visible at once. It knows nothing of logins: the session (session.ts)
 * hands it the token.
 */
import { readFileSync } from 'node:fs';
import { gunzip } from 'node:zlib';
import { Agent, type Dispatcher } from 'undici';
import { SETTINGS } from '../config/settings';
import { ScorerError } from '../errors';
import type { EngineConnection } from '../config/connection';
import type { EngineSettings } from '../config/load';
import type { Logger } from '../log';
import type { Counter, Histogram, Metrics } from '../metrics/metrics';
import { AnswerTooLarge, decodeInline, JsonDecoder, type ListShape } from './decoder';

export type EngineClientOptions = Pick<
  EngineSettings,
  'pageSize' | 'maxVms' | 'requestTimeoutMs' | 'requestDeadlineMs' | 'maxAnswerBytes'
> & {
  readonly connection: EngineConnection;
  readonly logger: Logger;
  /** Where the request metrics go; default a registry of its own. */
  readonly metrics?: Metrics;
};

export interface EngineResponse {
  readonly status: number;
  readonly body: unknown;
}

const MiB = 2 ** 20;
const { requestDeadlineMs: DEADLINE, maxAnswerBytes: MAX_ANSWER } = SETTINGS.engine;
/** Answers that are not lists (the login, faults) are small; nothing honest comes near this. */
export const SMALL_ANSWER = 64 * 1024;
/** Engine requests take ms (a host) to minutes (a large page on a loaded engine). */
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** What a request ended with: its HTTP status class, or why there was no answer. */
export type RequestResult = '2xx' | '3xx' | '4xx' | '5xx' | 'timeout' | 'error' | 'cancelled';

export class EngineTransport {
  private readonly logger: Logger;
  private readonly agent: Agent;
  readonly api: URL;
  private readonly decoder: JsonDecoder;
  /** Aborted by close(): every request in flight, logins included, ends with it. */
  private readonly closed = new AbortController();
  private readonly requests: Counter<'endpoint' | 'status_class'>;
  private readonly requestSeconds: Histogram<'endpoint'>;
  private firstSent = false;

  constructor(
    private readonly options: EngineClientOptions,
    metrics: Metrics,
  ) {
    this.logger = options.logger;
    this.decoder = new JsonDecoder(options.maxAnswerBytes);
    this.requests = metrics.counter(
      'ksm_scorer_engine_requests_total',
      'Engine API requests by endpoint template and result: the HTTP status class, or timeout, error (no answer) or cancelled.',
      ['endpoint', 'status_class'],
    );
    this.requestSeconds = metrics.histogram(
      'ksm_scorer_engine_request_duration_seconds',
      'Engine API request time, answer read and decoded, by endpoint template.',
      ['endpoint'],
      REQUEST_BUCKETS,
    );
    const { connection, requestTimeoutMs } = options;
    this.api = new URL(connection.url);
    this.agent = new Agent({
      connect: {
        timeout: requestTimeoutMs,
        rejectUnauthorized: !connection.insecure,
        ...(connection.caFile !== undefined ? { ca: readFileSync(connection.caFile, 'utf8') } : {}),
      },
      headersTimeout: requestTimeoutMs,
      bodyTimeout: requestTimeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  /** Aborted when the transport closes. */
  get closedSignal(): AbortSignal {
    return this.closed.signal;
  }

  /** Cancels whatever is in flight and closes connections. */
  async close(): Promise<void> {
    this.closed.abort(new ScorerError('cancelled', 'engine client closed'));
    await this.agent.destroy();
    await this.decoder.close();
  }

  /** GET `path` with the token: its status and decoded body (the bytes, `keepBytes`), bounded and within the deadline. */
  async send(
    path: string,
    endpoint: string,
    token: string,
    signal: AbortSignal | undefined,
    list: ListShape | undefined,
    keepBytes = false,
  ): Promise<EngineResponse> {
    const { requestDeadlineMs, maxAnswerBytes } = this.options;
    const deadline = AbortSignal.timeout(requestDeadlineMs);
    try {
      const res = await this.agent.request({
        origin: this.api.origin,
        path,
        method: 'GET',
        headers: {
          authorization: `Bearer ${token}`,
          version: '4',
          accept: 'application/json',
          'accept-encoding': 'gzip',
        },
        signal: AbortSignal.any([deadline, this.closed.signal, ...(signal === undefined ? [] : [signal])]),
      });
      const bytes = await readBounded(res.body, maxAnswerBytes);
      if (res.statusCode === 401 || res.statusCode === 431) return { status: res.statusCode, body: undefined }; // an HTML page, not JSON
      const gzip = String(res.headers['content-encoding'] ?? '').toLowerCase() === 'gzip';
      if (keepBytes && res.statusCode === 200) return { status: res.statusCode, body: await inflateBounded(bytes, gzip, maxAnswerBytes) };
      // A fault's body is only read for its reason: a large one is not worth decoding.
      const body =
        res.statusCode === 200
          ? await this.decoder.decode(bytes, gzip, list)
          : await decodeInline(bytes, gzip, SMALL_ANSWER).catch(() => undefined);
      return { status: res.statusCode, body };
    } catch (err) {
      if (err instanceof AnswerTooLarge) throw tooLarge(endpoint, err);
      if (deadline.aborted && !signal?.aborted && !this.closed.signal.aborted) {
        throw new ScorerError(
          'engine_unreachable',
          `engine did not finish answering ${endpoint} within ${requestDeadlineMs / 1000} s (${DEADLINE.env})`,
          {
            endpoint,
            cause: deadline.reason,
          },
        );
      }
      throw transportError(err, this.options.connection.url, endpoint, signal, this.closed.signal);
    }
  }

  postForm(url: URL, form: Record<string, string>, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    return this.agent.request({
      origin: url.origin,
      path: url.pathname,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(form).toString(),
      signal,
    });
  }

  /**
   * Runs one engine request, counting it by endpoint and result. The first
   * request of the client is logged when sent and when it fails, so an
   * engine that hangs is not 30 s of silence; later failures at debug (the
   * sync logs its failure streaks).
   */
  async track<T extends { status: number }>(endpoint: string, request: () => Promise<T>): Promise<T> {
    const first = !this.firstSent;
    if (first) {
      this.firstSent = true;
      this.logger.info('first engine request sent', {
        endpoint,
        engine: this.api.origin,
        timeoutMs: this.options.requestTimeoutMs,
        deadlineMs: this.options.requestDeadlineMs,
      });
    }
    const t0 = performance.now();
    const done = (result: RequestResult) => {
      this.requests.inc({ endpoint, status_class: result });
      this.requestSeconds.observe({ endpoint }, (performance.now() - t0) / 1000);
    };
    try {
      const res = await request();
      done(`${Math.min(5, Math.max(2, Math.floor(res.status / 100)))}xx` as RequestResult);
      return res;
    } catch (err) {
      const result = failureOf(err);
      done(result);
      const fields = { endpoint, result, ms: Math.round(performance.now() - t0), err };
      if (first && result !== 'cancelled')
        this.logger.warn(result === 'timeout' ? 'first engine request timed out' : 'first engine request failed', fields);
      else this.logger.debug('engine request failed', fields);
      throw err;
    }
  }
}

/** Why a request got no answer: our own cancellation, a timeout (ours or undici's), or anything else. */
function failureOf(err: unknown): RequestResult {
  const e = ScorerError.from(err);
  if (e.code === 'cancelled') return 'cancelled';
  if (e.code === 'deadline_exceeded') return 'timeout';
  const cause = e.cause as { name?: string; code?: string } | undefined;
  return cause?.name === 'TimeoutError' || /TIMEOUT/.test(cause?.code ?? '') ? 'timeout' : 'error';
}

export function tooLarge(endpoint: string, err: AnswerTooLarge): ScorerError {
  const limit = err.limitBytes >= MiB ? `${err.limitBytes / MiB} MiB` : `${err.limitBytes / 1024} KiB`;
  return new ScorerError(
    'engine_protocol',
    `engine answer to ${endpoint} is larger than the limit of ${limit}${err.setting === undefined ? '' : ` (${err.setting})`}`,
    { endpoint },
  );
}

/** The whole body, or AnswerTooLarge as soon as it passes `limit` bytes (the rest is never read). */
export async function readBounded(body: Dispatcher.ResponseData['body'], limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      throw new AnswerTooLarge(limit, limit === SMALL_ANSWER ? undefined : MAX_ANSWER.env);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** The body as sent, inflated when gzipped, past `limit` refused. */
async function inflateBounded(bytes: Buffer, gzip: boolean, limit: number): Promise<Buffer> {
  if (!gzip) return bytes;
  return new Promise((resolve, reject) =>
    gunzip(bytes, { maxOutputLength: limit }, (err, out) => {
      if ((err as { code?: unknown } | null)?.code === 'ERR_BUFFER_TOO_LARGE') reject(new AnswerTooLarge(limit, MAX_ANSWER.env));
      else if (err) reject(new ScorerError('engine_protocol', 'an answer that is not valid gzip'));
      else resolve(out);
    }),
  );
}

/** `engineUrl` holds no credentials (config refuses them): it goes into the log, so the operator sees which engine failed. */
export function transportError(
  err: unknown,
  engineUrl: string,
  endpoint: string,
  signal: AbortSignal | undefined,
  closed: AbortSignal,
): ScorerError {
  // The decoder's verdict ("a malformed answer (...)") gets the endpoint it was about.
  if (err instanceof ScorerError && err.endpoint === undefined && err.code === 'engine_protocol')
    return new ScorerError(err.code, `engine answered ${endpoint} with ${err.message}`, { endpoint });
  if (err instanceof ScorerError) return err;
  if (signal?.aborted) return ScorerError.from(signal.reason);
  if (closed.aborted) return ScorerError.from(closed.reason);
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) return ScorerError.from(err);
  if (err instanceof Error && 'code' in err) {
    const code = (err as { code?: string }).code ?? err.name;
    return new ScorerError('engine_unreachable', `the oVirt engine at ${engineUrl} could not be reached (${endpoint}: ${code})`, {
      endpoint,
      cause: err,
    });
  }
  return new ScorerError('engine_protocol', `engine answered ${endpoint} with something unreadable`, { endpoint, cause: err });
}
