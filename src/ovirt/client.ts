/**
 * REST client for the oVirt engine API v4, over undici. It owns the OAuth
 * token (password grant; on a token refusal it logs in again and retries
 * once), asks for gzip, pages the VM collection, bounds every answer (size
 * while streaming and while inflating, total time) and turns every transport
 * or protocol failure into a ScorerError naming the endpoint. It counts every
 * request by endpoint template and result, and logs the first one (sent, and
 * failed) so an engine that hangs is visible at once. It never logs or
 * returns the password or the token.
 */
import { readFileSync } from 'node:fs';
import { gunzip } from 'node:zlib';
import { Agent, type Dispatcher } from 'undici';
import { abortable } from '../abortable';
import type { EngineConnection, EngineSettings } from '../config';
import { ScorerError } from '../errors';
import type { Logger } from '../log';
import { type Counter, type Histogram, Metrics } from '../metrics/metrics';
import type { EngineCluster, EngineEvent, EngineHost, EngineVm } from './model';
import { AnswerTooLarge, CLUSTER_FIELDS, decodeInline, EVENT_FIELDS, HOST_FIELDS, JsonDecoder, type ListShape, VM_FIELDS } from './decoder';
import { faultReason, listItems, parseCluster, parseEvent, parseEventId, parseHost, parseVm, searchableHostName } from './parse';
import { BadRecord, parseEach, preview, RecordRejections } from './rejections';

export type EngineClientOptions = Pick<EngineSettings, 'pageSize' | 'maxVms' | 'requestTimeoutMs' | 'requestDeadlineMs' | 'maxAnswerBytes'> & {
  readonly connection: EngineConnection;
  readonly logger: Logger;
  /** Where the request metrics go; default a registry of its own. */
  readonly metrics?: Metrics;
};

interface EngineResponse {
  readonly status: number;
  readonly body: unknown;
}

/** A token goes into a header: visible ASCII only, and of a sane size. */
const SENDABLE_TOKEN = /^[\x21-\x7e]{1,8192}$/;
/** How long close() waits for the logout: best effort, inside the shutdown budget. */
const LOGOUT_TIMEOUT_MS = 1_000;
const MiB = 2 ** 20;
/** Answers that are not lists (the login, faults) are small; nothing honest comes near this. */
const SMALL_ANSWER = 64 * 1024;
/** VMs parsed and handed over between two yields to the event loop during a refresh: well under a millisecond. */
const PARSE_SLICE = 100;
/** Engine requests take ms (a host) to minutes (a large page on a loaded engine). */
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** What a request ended with: its HTTP status class, or why there was no answer. */
export type RequestResult = '2xx' | '3xx' | '4xx' | '5xx' | 'timeout' | 'error' | 'cancelled';

export class EngineClient {
  private readonly options: EngineClientOptions;
  private readonly logger: Logger;
  private readonly agent: Agent;
  private readonly api: URL;
  private readonly tokenUrl: URL;
  private readonly logoutUrl: URL;
  private readonly decoder: JsonDecoder;
  /** Aborted by close(): every request in flight, logins included, ends with it. */
  private readonly closed = new AbortController();
  /** Records left out of answers since the last take; the inventory logs them once per sync. */
  readonly rejections: RecordRejections;
  private token: string | undefined;
  private login: Promise<string> | undefined;
  private readonly requests: Counter<'endpoint' | 'status_class'>;
  private readonly requestSeconds: Histogram<'endpoint'>;
  private firstSent = false;

  constructor(options: EngineClientOptions) {
    this.options = options;
    this.logger = options.logger;
    this.decoder = new JsonDecoder(options.maxAnswerBytes);
    const metrics = options.metrics ?? new Metrics();
    this.requests = metrics.counter(
      'ksm_scorer_engine_requests_total',
      'Engine API requests by endpoint template and result: the HTTP status class, or timeout, error (no answer) or cancelled.',
      ['endpoint', 'status_class'],
    );
    const rejected = metrics.counter(
      'ksm_scorer_engine_records_rejected_total',
      'Engine records left out of the inventory (or, reason duplicate, used once) by kind (host, cluster, vm, event) and reason.',
      ['kind', 'reason'],
    );
    this.rejections = new RecordRejections(
      (kind, reason) => rejected.inc({ kind, reason }),
      (text) => this.redact(text),
    );
    this.requestSeconds = metrics.histogram('ksm_scorer_engine_request_duration_seconds', 'Engine API request time, answer read and decoded, by endpoint template.', ['endpoint'], REQUEST_BUCKETS);
    const { connection, requestTimeoutMs } = options;
    this.api = new URL(connection.url);
    // .../ovirt-engine/api -> .../ovirt-engine/sso/oauth/token
    const root = this.api.pathname.replace(/\/api$/, '');
    this.tokenUrl = new URL(`${root}/sso/oauth/token`, this.api.origin);
    this.logoutUrl = new URL(`${root}/services/sso-logout`, this.api.origin);
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

  /** `rejections`: where records left out are counted (default the client's own; a sync passes one of its own). */
  async listHosts(signal?: AbortSignal, rejections = this.rejections): Promise<EngineHost[]> {
    return this.get('/hosts', {}, signal, { list: { listKey: 'host', fields: HOST_FIELDS }, parse: (body) => parseEach(listItems(body, 'host'), parseHost, rejections) });
  }

  async listClusters(signal?: AbortSignal, rejections = this.rejections): Promise<EngineCluster[]> {
    return this.get('/clusters', {}, signal, { list: { listKey: 'cluster', fields: CLUSTER_FIELDS }, parse: (body) => parseEach(listItems(body, 'cluster'), parseCluster, rejections) });
  }

  /**
   * Every VM, `pageSize` at a time, handed to `onPage` as each page arrives so
   * the caller never holds the whole collection's JSON. Returns the number of
   * requests made. Pages are not a snapshot: a VM may come twice.
   */
  async forEachVmPage(onPage: (vms: EngineVm[]) => void, signal?: AbortSignal, rejections = this.rejections): Promise<number> {
    const { pageSize: max, maxVms } = this.options;
    let firstOfLast: unknown;
    for (let page = 1; ; page++) {
      const query = { search: `sortby name asc page ${page}`, max: String(max) };
      const items = await this.get('/vms', query, signal, { list: { listKey: 'vm', fields: VM_FIELDS, maxItems: max }, parse: (body) => listItems(body, 'vm') });
      // Sorted by name, two pages never start with the same VM: the engine is ignoring `page`.
      const first = (items[0] as { id?: unknown } | undefined)?.id;
      if (page > 1 && first !== undefined && first === firstOfLast) {
        throw new ScorerError('engine_protocol', `engine answered GET /vms page ${page} with the same VMs as page ${page - 1}: it ignores paging`, { endpoint: 'GET /vms' });
      }
      firstOfLast = first;
      // A slice at a time, yielding between slices: a call that arrives meanwhile waits for one slice, not a page.
      for (let at = 0; at < items.length; at += PARSE_SLICE) {
        if (at > 0) await new Promise<void>((resolve) => setImmediate(resolve));
        onPage(parseEach(items.slice(at, at + PARSE_SLICE), parseVm, rejections));
      }
      if (items.length < max) return page;
      if (page * max >= maxVms) {
        throw new ScorerError('engine_protocol', `engine has at least ${maxVms} VMs, the most a refresh reads (OVIRT_MAX_VMS)`, { endpoint: 'GET /vms' });
      }
    }
  }

  /** Events with id > `from`, newest first, at most `max` (the engine keeps the newest when there are more). */
  async listEvents(from: number, max: number, signal?: AbortSignal, rejections = this.rejections): Promise<EngineEvent[]> {
    return this.get('/events', { from: String(from), max: String(max) }, signal, {
      list: { listKey: 'event', fields: EVENT_FIELDS, maxItems: max },
      parse: (body) => parseEach(listItems(body, 'event'), parseEvent, rejections),
    });
  }

  /** The id of the newest event, 0 when there is none: where to start polling. */
  async newestEventId(signal?: AbortSignal): Promise<number> {
    return this.get('/events', { max: '1' }, signal, {
      list: { listKey: 'event', fields: EVENT_FIELDS, maxItems: 1 },
      // Only its id is needed: an event whose other fields are unreadable still says where to poll from.
      parse: (body) => {
        const newest = listItems(body, 'event')[0];
        return newest === undefined ? 0 : parseEventId(newest);
      },
    });
  }

  async getVm(id: string, signal?: AbortSignal): Promise<EngineVm | undefined> {
    return this.get(`/vms/${encodeURIComponent(id)}`, {}, signal, { parse: (body): EngineVm | undefined => parseVm(body), notFound: () => undefined });
  }

  async getHost(id: string, signal?: AbortSignal): Promise<EngineHost | undefined> {
    return this.get(`/hosts/${encodeURIComponent(id)}`, {}, signal, { parse: (body): EngineHost | undefined => parseHost(body), notFound: () => undefined });
  }

  /** The VMs running on one host. The search is by name, so the result is filtered on host.id. */
  async listVmsOnHost(host: EngineHost, signal?: AbortSignal): Promise<EngineVm[]> {
    if (!searchableHostName(host.name)) {
      // Never put an odd name into an engine search: its VMs are known from full refreshes only.
      throw new ScorerError('engine_protocol', `host ${host.id} has a name the engine cannot be searched by: ${preview(host.name)}`, { endpoint: 'GET /vms' });
    }
    const vms = await this.get('/vms', { search: `on_host=${host.name}` }, signal, {
      list: { listKey: 'vm', fields: VM_FIELDS },
      parse: (body) => this.each(listItems(body, 'vm'), parseVm),
    });
    return vms.filter((vm) => vm.hostId === host.id);
  }

  /**
   * GET a resource the service can do without (the scheduling set-up), with the
   * same login, bounds and counting as the inventory's reads. `endpoint`: its
   * template for the metrics, ids left out. Throws ScorerError carrying the HTTP
   * status (403: an account that may not read it).
   */
  async getOptional<T>(path: string, query: Record<string, string>, endpoint: string, parse: (body: unknown) => T, list?: ListShape, signal?: AbortSignal): Promise<T> {
    return this.get(path, query, signal, { parse, endpoint, ...(list === undefined ? {} : { list }) });
  }

  /** The answer's bytes, inflated and not decoded, as the engine sent them (`engine record`); bounded by OVIRT_MAX_ANSWER_MB. */
  async getRaw(path: string, query: Record<string, string>, endpoint: string, signal?: AbortSignal): Promise<Buffer> {
    return this.get(path, query, signal, { endpoint, raw: true, parse: (body) => body as Buffer });
  }

  /** Revokes the token (best effort, briefly), cancels whatever is in flight and closes connections. */
  async close(): Promise<void> {
    const token = this.token;
    this.token = undefined;
    if (token !== undefined) {
      try {
        await this.track('POST /services/sso-logout', async () => {
          const res = await this.postForm(this.logoutUrl, { scope: 'ovirt-app-api', token }, AbortSignal.timeout(LOGOUT_TIMEOUT_MS));
          await res.body.dump();
          return { status: res.statusCode };
        });
      } catch (err) {
        this.logger.debug('engine logout failed', { err: ScorerError.from(err).message });
      }
    }
    this.closed.abort(new ScorerError('cancelled', 'engine client closed'));
    await this.agent.destroy();
    await this.decoder.close();
  }

  private each<T>(items: readonly unknown[], parse: (item: unknown) => T): T[] {
    return parseEach(items, parse, this.rejections);
  }

  /**
   * GET an API path and parse its answer. `project`: a large list whose items
   * only need some fields, decoded off the main thread. Errors carry the
   * endpoint (ids replaced by `{id}`) and the HTTP status.
   */
  private async get<T>(
    path: string,
    query: Record<string, string>,
    signal: AbortSignal | undefined,
    opts: { parse: (body: unknown) => T; notFound?: () => T; list?: ListShape; endpoint?: string; raw?: boolean },
  ): Promise<T> {
    const qs = new URLSearchParams(query).toString();
    const fullPath = `${this.api.pathname}${path}${qs === '' ? '' : `?${qs}`}`;
    const endpoint = opts.endpoint ?? `GET ${path.replace(/^(\/[a-z]+)\/[^/]+$/, '$1/{id}')}`;
    const fail = (code: 'engine_unreachable' | 'engine_protocol' | 'engine_auth', why: string, status: number) => new ScorerError(code, why, { endpoint, status });
    for (let attempt = 0; ; attempt++) {
      const token = await this.currentToken(signal);
      let res: EngineResponse;
      try {
        res = await this.track(endpoint, () => this.send(fullPath, endpoint, token, signal, opts.list, opts.raw === true));
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
      if (res.status === 401 || res.status === 431) throw fail('engine_auth', `engine rejected a fresh token for ${endpoint} (HTTP ${res.status})`, res.status);
      if (res.status === 404 && opts.notFound !== undefined) return opts.notFound();
      if (res.status >= 500) throw fail('engine_unreachable', `engine answered HTTP ${res.status} to ${endpoint}${this.describeFault(res.body)}`, res.status);
      if (res.status >= 300) throw fail('engine_protocol', `engine answered HTTP ${res.status} to ${endpoint}${this.describeFault(res.body)}`, res.status);
      if (res.body === undefined) throw fail('engine_protocol', `engine answered ${endpoint} with a malformed answer (not JSON)`, res.status);
      try {
        return opts.parse(res.body);
      } catch (err) {
        // A single record that is the whole answer (one VM, one host): counted like one left out of a
        // list, and kept as the cause, so a caller can tell "this record is unusable" from a broken answer.
        if (err instanceof BadRecord) {
          this.rejections.reject(err.kind, err.reason, err.recordId, err.message, err.rawId);
          throw new ScorerError(err.code, `engine answered ${endpoint} with a record that cannot be used: ${this.redact(err.message)}`, { endpoint, status: res.status, cause: err });
        }
        if (err instanceof ScorerError) throw new ScorerError(err.code, `engine answered ${endpoint} with a malformed answer: ${err.message}`, { endpoint, status: res.status });
        // A stack overflow on an absurdly nested answer, and the like: still the engine's answer that is bad.
        throw new ScorerError('engine_protocol', `engine answered ${endpoint} with a malformed answer`, { endpoint, status: res.status, cause: err });
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

  private async send(path: string, endpoint: string, token: string, signal: AbortSignal | undefined, list: ListShape | undefined, keepBytes = false): Promise<EngineResponse> {
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
      const body = res.statusCode === 200 ? await this.decoder.decode(bytes, gzip, list) : await decodeInline(bytes, gzip, SMALL_ANSWER).catch(() => undefined);
      return { status: res.statusCode, body };
    } catch (err) {
      if (err instanceof AnswerTooLarge) throw tooLarge(endpoint, err);
      if (deadline.aborted && !signal?.aborted && !this.closed.signal.aborted) {
        throw new ScorerError('engine_unreachable', `engine did not finish answering ${endpoint} within ${requestDeadlineMs / 1000} s (OVIRT_REQUEST_DEADLINE_SECONDS)`, {
          endpoint,
          cause: deadline.reason,
        });
      }
      throw transportError(err, this.options.connection.url, endpoint, signal, this.closed.signal);
    }
  }

  private postForm(url: URL, form: Record<string, string>, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    return this.agent.request({
      origin: url.origin,
      path: url.pathname,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(form).toString(),
      signal,
    });
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
      ({ status, body } = await this.track(endpoint, async () => {
        // Tied to close() too: a hanging login must not hold up a shutdown.
        const res = await this.postForm(this.tokenUrl, form, AbortSignal.any([AbortSignal.timeout(requestDeadlineMs), this.closed.signal]));
        return { status: res.statusCode, body: await decodeInline(await readBounded(res.body, SMALL_ANSWER), false, SMALL_ANSWER) };
      }));
    } catch (err) {
      if (err instanceof AnswerTooLarge) throw tooLarge(endpoint, err);
      throw transportError(err, this.options.connection.url, endpoint, undefined, this.closed.signal);
    }
    if (status === 400 || status === 401 || status === 403) {
      throw new ScorerError('engine_auth', `engine refused the login of ${connection.username}${this.describeFault(body)}`, { endpoint, status });
    }
    if (status >= 500) throw new ScorerError('engine_unreachable', `engine answered HTTP ${status} to the login`, { endpoint, status });
    const token = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).access_token : undefined;
    if (status !== 200 || typeof token !== 'string' || token === '') {
      throw new ScorerError('engine_protocol', `engine answered the login with HTTP ${status} and no access_token`, { endpoint, status });
    }
    if (!SENDABLE_TOKEN.test(token)) {
      // Accepting it would fail every request after, forever: a failed login is retried with backoff instead.
      throw new ScorerError('engine_protocol', `engine answered the login with an access_token that cannot be sent in a header (${token.length} characters, not all visible ASCII, or too long)`, {
        endpoint,
        status,
      });
    }
    this.token = token;
    this.logger.info('logged in to the engine', { user: connection.username });
    return token;
  }

  /**
   * Runs one engine request, counting it by endpoint and result. The first
   * request of the client is logged when sent and when it fails, so an
   * engine that hangs is not 30 s of silence; later failures at debug (the
   * sync logs its failure streaks).
   */
  private async track<T extends { status: number }>(endpoint: string, request: () => Promise<T>): Promise<T> {
    const first = !this.firstSent;
    if (first) {
      this.firstSent = true;
      this.logger.info('first engine request sent', { endpoint, engine: this.api.origin, timeoutMs: this.options.requestTimeoutMs, deadlineMs: this.options.requestDeadlineMs });
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
      if (first && result !== 'cancelled') this.logger.warn(result === 'timeout' ? 'first engine request timed out' : 'first engine request failed', fields);
      else this.logger.debug('engine request failed', fields);
      throw err;
    }
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

/** Why a request got no answer: our own cancellation, a timeout (ours or undici's), or anything else. */
function failureOf(err: unknown): RequestResult {
  const e = ScorerError.from(err);
  if (e.code === 'cancelled') return 'cancelled';
  if (e.code === 'deadline_exceeded') return 'timeout';
  const cause = e.cause as { name?: string; code?: string } | undefined;
  return cause?.name === 'TimeoutError' || /TIMEOUT/.test(cause?.code ?? '') ? 'timeout' : 'error';
}

function tooLarge(endpoint: string, err: AnswerTooLarge): ScorerError {
  const limit = err.limitBytes >= MiB ? `${err.limitBytes / MiB} MiB` : `${err.limitBytes / 1024} KiB`;
  return new ScorerError('engine_protocol', `engine answer to ${endpoint} is larger than the limit of ${limit}${err.setting === undefined ? '' : ` (${err.setting})`}`, { endpoint });
}

/** The whole body, or AnswerTooLarge as soon as it passes `limit` bytes (the rest is never read). */
async function readBounded(body: Dispatcher.ResponseData['body'], limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      throw new AnswerTooLarge(limit, limit === SMALL_ANSWER ? undefined : 'OVIRT_MAX_ANSWER_MB');
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
      if ((err as NodeJS.ErrnoException | null)?.code === 'ERR_BUFFER_TOO_LARGE') reject(new AnswerTooLarge(limit, 'OVIRT_MAX_ANSWER_MB'));
      else if (err) reject(new ScorerError('engine_protocol', 'an answer that is not valid gzip'));
      else resolve(out);
    }),
  );
}

/** `engineUrl` holds no credentials (config refuses them): it goes into the log, so the operator sees which engine failed. */
function transportError(err: unknown, engineUrl: string, endpoint: string, signal: AbortSignal | undefined, closed: AbortSignal): ScorerError {
  // The decoder's verdict ("a malformed answer (...)") gets the endpoint it was about.
  if (err instanceof ScorerError && err.endpoint === undefined && err.code === 'engine_protocol') return new ScorerError(err.code, `engine answered ${endpoint} with ${err.message}`, { endpoint });
  if (err instanceof ScorerError) return err;
  if (signal?.aborted) return ScorerError.from(signal.reason);
  if (closed.aborted) return ScorerError.from(closed.reason);
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) return ScorerError.from(err);
  if (err instanceof Error && 'code' in err) {
    const code = (err as { code?: string }).code ?? err.name;
    return new ScorerError('engine_unreachable', `the oVirt engine at ${engineUrl} could not be reached (${endpoint}: ${code})`, { endpoint, cause: err });
  }
  return new ScorerError('engine_protocol', `engine answered ${endpoint} with something unreadable`, { endpoint, cause: err });
}
