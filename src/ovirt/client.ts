/**
 * REST client for the oVirt engine API v4, over undici. It owns the OAuth
 * token (password grant; on 401 it logs in again and retries once), asks for
 * gzip, pages the VM collection, and turns every transport or protocol
 * failure into a ScorerError. It never logs or returns the password.
 */
import { readFileSync } from 'node:fs';
import { Agent, errors as undiciErrors } from 'undici';
import { abortable } from '../abortable';
import type { EngineConnection } from '../config';
import { ScorerError } from '../errors';
import type { Logger } from '../log';
import type { EngineEvent, EngineHost, EngineVm } from './model';
import { decodeInline, HOST_FIELDS, JsonDecoder, type Projection, VM_FIELDS } from './decoder';
import { faultReason, listItems, parseEvent, parseHost, parseVm } from './parse';

export interface EngineClientOptions {
  readonly connection: EngineConnection;
  /** VMs per page of GET /vms. */
  readonly pageSize: number;
  /** Connect, header and body timeout of each request. */
  readonly requestTimeoutMs: number;
  readonly logger: Logger;
}

interface EngineResponse {
  readonly status: number;
  readonly body: unknown;
}

export class EngineClient {
  private readonly config: EngineConnection;
  private readonly pageSize: number;
  private readonly requestTimeoutMs: number;
  private readonly logger: Logger;
  private readonly agent: Agent;
  private readonly api: URL;
  private readonly tokenUrl: URL;
  private readonly logoutUrl: URL;
  private readonly decoder = new JsonDecoder();
  private token: string | undefined;
  private login: Promise<string> | undefined;

  constructor({ connection: config, pageSize, requestTimeoutMs, logger }: EngineClientOptions) {
    this.config = config;
    this.pageSize = pageSize;
    this.requestTimeoutMs = requestTimeoutMs;
    this.logger = logger;
    this.api = new URL(config.url);
    // .../ovirt-engine/api -> .../ovirt-engine/sso/oauth/token
    const root = this.api.pathname.replace(/\/api$/, '');
    this.tokenUrl = new URL(`${root}/sso/oauth/token`, this.api.origin);
    this.logoutUrl = new URL(`${root}/services/sso-logout`, this.api.origin);
    this.agent = new Agent({
      connect: {
        timeout: requestTimeoutMs,
        rejectUnauthorized: !config.insecure,
        ...(config.caFile !== undefined ? { ca: readFileSync(config.caFile, 'utf8') } : {}),
      },
      headersTimeout: requestTimeoutMs,
      bodyTimeout: requestTimeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  async listHosts(signal?: AbortSignal): Promise<EngineHost[]> {
    const { body } = await this.get('/hosts', {}, signal, { project: { listKey: 'host', fields: HOST_FIELDS } });
    return listItems(body, 'host').map(parseHost);
  }

  /**
   * Every VM, `pageSize` at a time, handed to `onPage` as each page arrives so
   * the caller never holds the whole collection's JSON. Returns the number of
   * requests made. Pages are not a snapshot: a VM may come twice.
   */
  async forEachVmPage(onPage: (vms: EngineVm[]) => void, signal?: AbortSignal): Promise<number> {
    const max = this.pageSize;
    for (let page = 1; ; page++) {
      const query = { search: `sortby name asc page ${page}`, max: String(max) };
      const { body } = await this.get('/vms', query, signal, { project: { listKey: 'vm', fields: VM_FIELDS } });
      const items = listItems(body, 'vm');
      onPage(items.map(parseVm));
      if (items.length < max) return page;
    }
  }

  /** Events with id > `from`, newest first, at most `max` (the engine keeps the newest when there are more). */
  async listEvents(from: number, max: number, signal?: AbortSignal): Promise<EngineEvent[]> {
    const { body } = await this.get('/events', { from: String(from), max: String(max) }, signal);
    return listItems(body, 'event').map(parseEvent);
  }

  /** The id of the newest event, 0 when there is none: where to start polling. */
  async newestEventId(signal?: AbortSignal): Promise<number> {
    const { body } = await this.get('/events', { max: '1' }, signal);
    return listItems(body, 'event').map(parseEvent)[0]?.id ?? 0;
  }

  async getVm(id: string, signal?: AbortSignal): Promise<EngineVm | undefined> {
    const res = await this.get(`/vms/${encodeURIComponent(id)}`, {}, signal, { allowNotFound: true });
    return res.status === 404 ? undefined : parseVm(res.body);
  }

  async getHost(id: string, signal?: AbortSignal): Promise<EngineHost | undefined> {
    const res = await this.get(`/hosts/${encodeURIComponent(id)}`, {}, signal, { allowNotFound: true });
    return res.status === 404 ? undefined : parseHost(res.body);
  }

  /** The VMs running on one host. The search is by name, so the result is filtered on host.id. */
  async listVmsOnHost(host: EngineHost, signal?: AbortSignal): Promise<EngineVm[]> {
    const { body } = await this.get('/vms', { search: `on_host=${host.name}` }, signal);
    return listItems(body, 'vm').map(parseVm).filter((vm) => vm.hostId === host.id);
  }

  /** Revokes the token (best effort) and closes connections. */
  async close(): Promise<void> {
    const token = this.token;
    this.token = undefined;
    if (token !== undefined) {
      try {
        const res = await this.agent.request({
          origin: this.logoutUrl.origin,
          path: this.logoutUrl.pathname,
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
          body: new URLSearchParams({ scope: 'ovirt-app-api', token }).toString(),
          signal: AbortSignal.timeout(2_000),
        });
        await res.body.dump();
      } catch (err) {
        this.logger.debug('engine logout failed', { err: ScorerError.from(err).message });
      }
    }
    await this.agent.close();
    await this.decoder.close();
  }

  /** `project`: a large list whose items only need some fields, decoded off the main thread. */
  private async get(
    path: string,
    query: Record<string, string>,
    signal: AbortSignal | undefined,
    opts: { allowNotFound?: boolean; project?: { listKey: string; fields: Projection } } = {},
  ): Promise<EngineResponse> {
    const qs = new URLSearchParams(query).toString();
    const fullPath = `${this.api.pathname}${path}${qs === '' ? '' : `?${qs}`}`;
    for (let attempt = 0; ; attempt++) {
      const token = await this.currentToken(signal);
      const res = await this.send(fullPath, token, signal, opts.project);
      if (res.status === 401 && attempt === 0) {
        // Expired or revoked (engine restart): there is no refresh grant, so log in again once.
        if (this.token === token) this.token = undefined;
        this.logger.info('engine token rejected, logging in again');
        continue;
      }
      if (res.status === 401) throw new ScorerError('engine_auth', `engine rejected a fresh token for GET ${path}`);
      if (res.status === 404 && opts.allowNotFound) return res;
      if (res.status >= 500) throw new ScorerError('engine_unreachable', `engine answered HTTP ${res.status} to GET ${path}${describeFault(res.body)}`);
      if (res.status >= 300) throw new ScorerError('engine_protocol', `engine answered HTTP ${res.status} to GET ${path}${describeFault(res.body)}`);
      if (res.body === undefined) throw new ScorerError('engine_protocol', `engine answered GET ${path} with a body that is not JSON`);
      return res;
    }
  }

  private async send(path: string, token: string, signal: AbortSignal | undefined, project?: { listKey: string; fields: Projection }): Promise<EngineResponse> {
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
        signal,
      });
      const raw = Buffer.from(await res.body.arrayBuffer());
      if (res.statusCode === 401) return { status: 401, body: undefined }; // an HTML page, not JSON
      const gzip = String(res.headers['content-encoding'] ?? '').toLowerCase() === 'gzip';
      const body = project !== undefined && res.statusCode === 200
        ? await this.decoder.decode(raw, gzip, project.listKey, project.fields)
        : await decodeInline(raw, gzip);
      return { status: res.statusCode, body };
    } catch (err) {
      throw transportError(err, `GET ${path.split('?')[0]}`);
    }
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
    const form = new URLSearchParams({
      grant_type: 'password',
      scope: 'ovirt-app-api',
      username: this.config.username,
      password: this.config.password,
    });
    let status: number;
    let body: unknown;
    try {
      const res = await this.agent.request({
        origin: this.tokenUrl.origin,
        path: this.tokenUrl.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        signal: AbortSignal.timeout(this.requestTimeoutMs),
      });
      status = res.statusCode;
      body = await decodeInline(Buffer.from(await res.body.arrayBuffer()), false);
    } catch (err) {
      throw transportError(err, 'POST sso/oauth/token');
    }
    if (status === 400 || status === 401 || status === 403) {
      throw new ScorerError('engine_auth', `engine refused the login of ${this.config.username}${describeFault(body)}`);
    }
    if (status >= 500) throw new ScorerError('engine_unreachable', `engine answered HTTP ${status} to the login`);
    const token = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).access_token : undefined;
    if (status !== 200 || typeof token !== 'string' || token === '') {
      throw new ScorerError('engine_protocol', `engine answered the login with HTTP ${status} and no access_token`);
    }
    this.token = token;
    this.logger.info('logged in to the engine', { user: this.config.username });
    return token;
  }
}

function describeFault(body: unknown): string {
  const reason = faultReason(body);
  return reason === undefined ? '' : ` (${reason})`;
}

function transportError(err: unknown, what: string): ScorerError {
  if (err instanceof ScorerError) return err;
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) return ScorerError.from(err);
  if (err instanceof undiciErrors.UndiciError || (err instanceof Error && 'code' in err)) {
    const code = (err as { code?: string }).code ?? err.name;
    return new ScorerError('engine_unreachable', `engine unreachable on ${what}: ${code}`, { cause: err });
  }
  return new ScorerError('engine_protocol', `engine answered ${what} with something unreadable`, { cause: err });
}
