/**
 * The engine session: the OAuth token (password grant; concurrent callers
 * share one login; on a token refusal it logs in again and retries once), the
 * GET every resource read goes through (status to error, the answer parsed,
 * one unusable record told from a broken answer), and the logout. It never
 * logs or returns the password or the token: whatever the engine echoes of
 * them is blanked out.
 */
import { abortable } from '../abortable';
import { ScorerError } from '../errors';
import type { Logger } from '../log';
import { Metrics } from '../metrics/metrics';
import { AnswerTooLarge, decodeInline, type ListShape } from './decoder';
import { faultReason } from './parse';
import { BadRecord, RecordRejections } from './rejections';
import {
  type EngineClientOptions,
  type EngineResponse,
  EngineTransport,
  readBounded,
  SMALL_ANSWER,
  tooLarge,
  transportError,
} from './transport';

/** How an answer is read: `parse` its body; `notFound`: what a 404 means; `list`: a large list decoded off the main thread; `raw`: the bytes. */
export interface GetOptions<T> {
  readonly parse: (body: unknown) => T;
  readonly notFound?: () => T;
  readonly list?: ListShape;
  /** The endpoint template for metrics and errors; default the path with its id replaced by `{id}`. */
  readonly endpoint?: string;
  readonly raw?: boolean;
}

/** A token goes into a header: visible ASCII only, and of a sane size. */
const SENDABLE_TOKEN = /^[\x21-\x7e]{1,8192}$/;
/** How long close() waits for the logout: best effort, inside the shutdown budget. */
const LOGOUT_TIMEOUT_MS = 1_000;

export class EngineSession {
  private readonly logger: Logger;
  private readonly transport: EngineTransport;
  private readonly tokenUrl: URL;
  private readonly logoutUrl: URL;
  /** Records left out of answers since the last take; the inventory logs them once per sync. */
  readonly rejections: RecordRejections;
  private token: string | undefined;
  private login: Promise<string> | undefined;

  constructor(private readonly options: EngineClientOptions) {
    this.logger = options.logger;
    const metrics = options.metrics ?? new Metrics();
    this.transport = new EngineTransport(options, metrics);
    const rejected = metrics.counter(
      'ksm_scorer_engine_records_rejected_total',
      'Engine records left out of the inventory (or, reason duplicate, used once) by kind (host, cluster, vm, event) and reason.',
      ['kind', 'reason'],
    );
    this.rejections = new RecordRejections(
      (kind, reason) => rejected.inc({ kind, reason }),
      (text) => this.redact(text),
    );
    const { api } = this.transport;
    // .../ovirt-engine/api -> .../ovirt-engine/sso/oauth/token
    const root = api.pathname.replace(/\/api$/, '');
    this.tokenUrl = new URL(`${root}/sso/oauth/token`, api.origin);
    this.logoutUrl = new URL(`${root}/services/sso-logout`, api.origin);
  }

  /** Revokes the token (best effort, briefly), cancels whatever is in flight and closes connections. */
  async close(): Promise<void> {
    const token = this.token;
    this.token = undefined;
    if (token !== undefined) {
      try {
        await this.transport.track('POST /services/sso-logout', async () => {
          const res = await this.transport.postForm(
            this.logoutUrl,
            { scope: 'ovirt-app-api', token },
            AbortSignal.timeout(LOGOUT_TIMEOUT_MS),
          );
          await res.body.dump();
          return { status: res.statusCode };
        });
      } catch (err) {
        this.logger.debug('engine logout failed', { err: ScorerError.from(err).message });
      }
    }
    await this.transport.close();
  }

  /**
   * GET an API path and parse its answer. `project`: a large list whose items
   * only need some fields, decoded off the main thread. Errors carry the
   * endpoint (ids replaced by `{id}`) and the HTTP status.
   */
  async get<T>(path: string, query: Record<string, string>, signal: AbortSignal | undefined, opts: GetOptions<T>): Promise<T> {
    const qs = new URLSearchParams(query).toString();
    const fullPath = `${this.transport.api.pathname}${path}${qs === '' ? '' : `?${qs}`}`;
    const endpoint = opts.endpoint ?? `GET ${path.replace(/^(\/[a-z]+)\/[^/]+$/, '$1/{id}')}`;
    const fail = (code: 'engine_unreachable' | 'engine_protocol' | 'engine_auth', why: string, status: number) =>
      new ScorerError(code, why, { endpoint, status });
    for (let attempt = 0; ; attempt++) {
      const token = await this.currentToken(signal);
      let res: EngineResponse;
      try {
        res = await this.transport.track(endpoint, () =>
          this.transport.send(fullPath, endpoint, token, signal, opts.list, opts.raw === true),
        );
      } catch (err) {
        // undici refuses a header it cannot send: the token is the only header that varies.
        if (attempt === 0 && err instanceof ScorerError && (err.cause as { code?: string } | undefined)?.code === 'UND_ERR_INVALID_ARG') {
          this.dropToken(token, 'the engine token could not be sent, logging in again');
          continue;
        }
        throw err;
      }
      // 401: expired or revoked (engine restart). 431: a header too large, and the token is the big one.
      if ((res.status === 401 || res.status === 431) && attempt === 0) {
        this.dropToken(token, `engine refused the token (HTTP ${res.status}), logging in again`);
        continue;
      }
      if (res.status === 401 || res.status === 431)
        throw fail('engine_auth', `engine rejected a fresh token for ${endpoint} (HTTP ${res.status})`, res.status);
      if (res.status === 404 && opts.notFound !== undefined) return opts.notFound();
      if (res.status >= 500)
        throw fail('engine_unreachable', `engine answered HTTP ${res.status} to ${endpoint}${this.describeFault(res.body)}`, res.status);
      if (res.status >= 300)
        throw fail('engine_protocol', `engine answered HTTP ${res.status} to ${endpoint}${this.describeFault(res.body)}`, res.status);
      if (res.body === undefined)
        throw fail('engine_protocol', `engine answered ${endpoint} with a malformed answer (not JSON)`, res.status);
      try {
        return opts.parse(res.body);
      } catch (err) {
        // A single record that is the whole answer (one VM, one host): counted like one left out of a
        // list, and kept as the cause, so a caller can tell "this record is unusable" from a broken answer.
        if (err instanceof BadRecord) {
          this.rejections.reject(err.kind, err.reason, err.recordId, err.message, err.rawId);
          throw new ScorerError(err.code, `engine answered ${endpoint} with a record that cannot be used: ${this.redact(err.message)}`, {
            endpoint,
            status: res.status,
            cause: err,
          });
        }
        if (err instanceof ScorerError)
          throw new ScorerError(err.code, `engine answered ${endpoint} with a malformed answer: ${err.message}`, {
            endpoint,
            status: res.status,
          });
        // A stack overflow on an absurdly nested answer, and the like: still the engine's answer that is bad.
        throw new ScorerError('engine_protocol', `engine answered ${endpoint} with a malformed answer`, {
          endpoint,
          status: res.status,
          cause: err,
        });
      }
    }
  }

  /** The fault's reason for a message, with anything the engine echoed of our secrets blanked out. */
  private describeFault(body: unknown): string {
    const reason = faultReason(body);
    return reason === undefined ? '' : ` (${this.redact(reason)})`;
  }

  /** Text from the engine, with anything it echoed of our secrets (token, password) blanked out. */
  private redact(text: string): string {
    for (const secret of [this.token, this.options.connection.password]) if (secret !== undefined) text = blank(text, secret);
    return text.replace(/\b(Bearer|Basic)\s+\S+/gi, '$1 <redacted>');
  }

  private dropToken(token: string, why: string): void {
    if (this.token === token) this.token = undefined;
    this.logger.info(why);
  }

  private async currentToken(signal: AbortSignal | undefined): Promise<string> {
    if (this.token !== undefined) return this.token;
    // Concurrent callers share one login.
    this.login ??= this.fetchToken().finally(() => {
      this.login = undefined;
    });
    return abortable(this.login, signal);
  }

  private async fetchToken(): Promise<string> {
    const { connection, requestDeadlineMs } = this.options;
    const form = { grant_type: 'password', scope: 'ovirt-app-api', username: connection.username, password: connection.password };
    const endpoint = 'POST /sso/oauth/token';
    let status: number;
    let body: unknown;
    try {
      ({ status, body } = await this.transport.track(endpoint, async () => {
        // Tied to close() too: a hanging login must not hold up a shutdown.
        const res = await this.transport.postForm(
          this.tokenUrl,
          form,
          AbortSignal.any([AbortSignal.timeout(requestDeadlineMs), this.transport.closedSignal]),
        );
        return { status: res.statusCode, body: await decodeInline(await readBounded(res.body, SMALL_ANSWER), false, SMALL_ANSWER) };
      }));
    } catch (err) {
      if (err instanceof AnswerTooLarge) throw tooLarge(endpoint, err);
      throw transportError(err, this.options.connection.url, endpoint, undefined, this.transport.closedSignal);
    }
    if (status === 400 || status === 401 || status === 403) {
      throw new ScorerError('engine_auth', `engine refused the login of ${connection.username}${this.describeFault(body)}`, {
        endpoint,
        status,
      });
    }
    if (status >= 500) throw new ScorerError('engine_unreachable', `engine answered HTTP ${status} to the login`, { endpoint, status });
    const token = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).access_token : undefined;
    if (status !== 200 || typeof token !== 'string' || token === '') {
      throw new ScorerError('engine_protocol', `engine answered the login with HTTP ${status} and no access_token`, { endpoint, status });
    }
    if (!SENDABLE_TOKEN.test(token)) {
      // Accepting it would fail every request after, forever: a failed login is retried with backoff instead.
      throw new ScorerError(
        'engine_protocol',
        `engine answered the login with an access_token that cannot be sent in a header (${token.length} characters, not all visible ASCII, or too long)`,
        {
          endpoint,
          status,
        },
      );
    }
    this.token = token;
    this.logger.info('logged in to the engine', { user: connection.username });
    return token;
  }
}

/**
 * `text` with `secret` blanked out, also as JSON escapes it, and also where only its start
 * appears (a text cut short): from its first 8 characters (all of a shorter one) as far as it matches.
 */
function blank(text: string, secret: string): string {
  if (secret.length < 4) return text;
  for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1)])) {
    const probe = form.slice(0, 8);
    for (let at = text.indexOf(probe); at >= 0; at = text.indexOf(probe, at + REDACTED.length)) {
      let n = probe.length;
      while (n < form.length && text[at + n] === form[n]) n++;
      text = `${text.slice(0, at)}${REDACTED}${text.slice(at + n)}`;
    }
  }
  return text;
}

const REDACTED = '<redacted>';
