/**
 * A simulated oVirt engine: a real HTTP server speaking the REST API v4 JSON
 * the service reads (see shared/reference/ovirt.md): OAuth password grant,
 * HTML 401 pages for bad tokens, integers as strings, `{}` for empty lists,
 * paging through `search=... page N` with `max`, and gzip on request. It
 * records the requests it serves when asked to, so tests can count what the service asked.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { RecordedEngine } from '../recording/replay';
import { API, clusterJson, eventJson, hostJson, list, policyJson, unitJson, vmJson, weightJson } from './answers';
import { type EngineFaults, writeGarbage } from './faults';
import { SimInventory, type SimInventoryOptions } from './inventory';
import { type RecordedRequest, Ring } from './request-log';
import { searchEvents, searchHosts, searchVms } from './search';

export interface SimulatedEngineOptions extends SimInventoryOptions {
  readonly username?: string;
  readonly password?: string;
  /**
   * Keep rendered answers and serve them again while the inventory is unchanged
   * through its methods (benchmarks: the engine's own CPU must not be what is measured).
   */
  readonly cacheAnswers?: boolean;
  /** Answer from a recording (`engine record`) instead of the generated inventory. */
  readonly recorded?: RecordedEngine;
  /** Serve HTTPS with this PEM key and certificate instead of HTTP. */
  readonly tls?: { readonly key: string; readonly cert: string };
  /**
   * How many requests to remember for tests (`requests`, `arrived`), the newest kept; default 0:
   * none, so a simulator serving for days (`serve` without OVIRT_URL) keeps nothing.
   */
  readonly maxRecorded?: number;
}

export class SimulatedEngine {
  readonly inventory: SimInventory;
  readonly username: string;
  /** Change it to play a password change on the engine side. */
  password: string;
  /** Added before every API answer, to play a slow engine. */
  latencyMs = 0;
  faults: EngineFaults = {};
  /**
   * Hosts this account may not see, as a filtered (non-admin) view plays it:
   * left out of /hosts, 404 on /hosts/{id}, yet the VMs running on them still name them.
   */
  readonly hiddenHosts = new Set<string>();
  private readonly tokens = new Set<string>();
  private readonly recorded: RecordedEngine | undefined;
  private readonly answerCache: Map<string, { version: number; json: Buffer; gzip: Buffer }> | undefined;
  private readonly server: Server;
  private listening = false;
  private readonly scheme: 'http' | 'https';
  private baseUrl: string | undefined;
  private readonly requestLog: Ring<RecordedRequest>;
  private readonly arrivalLog: Ring<string>;
  private answered = 0;

  constructor(options: SimulatedEngineOptions) {
    this.inventory = new SimInventory(options);
    this.requestLog = new Ring(options.maxRecorded ?? 0);
    this.arrivalLog = new Ring(options.maxRecorded ?? 0);
    this.answerCache = options.cacheAnswers ? new Map() : undefined;
    this.recorded = options.recorded;
    this.username = options.username ?? 'admin@internal';
    this.password = options.password ?? 'simulator';
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => this.send(req, res, 500, { reason: 'Operation Failed', detail: String(err) }));
    };
    this.scheme = options.tls ? 'https' : 'http';
    this.server = options.tls ? createTlsServer({ key: options.tls.key, cert: options.tls.cert }, handler) : createServer(handler);
    this.server.keepAliveTimeout = 60_000;
  }

  /** Listens on 127.0.0.1 (port 0 picks one; after stop(), pass the old port to come back at the same URL); returns the API URL. */
  async start(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    this.listening = true;
    const { port: bound } = this.server.address() as AddressInfo;
    this.baseUrl = `${this.scheme}://${host}:${bound}${API}`;
    return this.baseUrl;
  }

  get url(): string {
    if (this.baseUrl === undefined) throw new Error('simulator not started');
    return this.baseUrl;
  }

  /** Like an engine going down: connections drop and every token is forgotten. start() again brings it back. */
  async stop(): Promise<void> {
    this.listening = false;
    this.tokens.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Every token becomes invalid, as when tokens expire or the engine restarts. */
  expireTokens(): void {
    this.tokens.clear();
  }

  /** The requests recorded (the newest `maxRecorded`), oldest first, as they were answered. */
  get requests(): readonly RecordedRequest[] {
    return this.requestLog.items();
  }

  /** Paths of the API requests recorded as they arrived, before any latency or fault: a test knows a request is in flight. */
  get arrived(): readonly string[] {
    return this.arrivalLog.items();
  }

  /** API requests (login and logout excluded) recorded so far. */
  apiRequests(): RecordedRequest[] {
    return this.requestLog.items().filter((r) => r.path.startsWith('/api/'));
  }

  /** Requests answered so far, recorded or not (benchmarks count them). */
  get requestCount(): number {
    return this.answered;
  }

  /** Forgets the requests recorded so far (`requests`; `arrived` is kept): a test counts from here. */
  forgetRequests(): void {
    this.requestLog.clear();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    if (req.method === 'POST' && url.pathname === '/ovirt-engine/sso/oauth/token') {
      const body = await readBody(req);
      while (this.faults.hangLogin && this.listening) await new Promise((resolve) => setTimeout(resolve, 20));
      if (!this.listening) return void res.destroy();
      return this.login(req, res, body);
    }
    if (req.method === 'POST' && url.pathname === '/ovirt-engine/services/sso-logout') {
      this.tokens.delete(new URLSearchParams(await readBody(req)).get('token') ?? '');
      return this.send(req, res, 200, {});
    }
    this.arrivalLog.add(url.pathname.replace(/^\/ovirt-engine/, ''));
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    while (this.faults.hang && this.listening) await new Promise((resolve) => setTimeout(resolve, 20));
    if (!this.listening) return void res.destroy();
    if (this.faults.expireTokensAfter !== undefined && this.faults.expireTokensAfter-- <= 0) {
      this.faults.expireTokensAfter = undefined;
      this.tokens.clear();
    }
    const auth = req.headers.authorization ?? '';
    if (this.faults.unauthorized || !auth.startsWith('Bearer ') || !this.tokens.has(auth.slice(7))) return this.unauthorized(req, res);
    if (this.faults.status !== undefined) {
      return this.send(req, res, this.faults.status, { reason: 'Operation Failed', detail: `simulated HTTP ${this.faults.status}` });
    }
    if (this.faults.garbage !== undefined) return this.garbage(req, res, this.faults.garbage);
    if (this.faults.respond?.(url.pathname.slice(API.length), req, res)) return this.record(req, res.statusCode, false);
    if (req.method !== 'GET') return this.send(req, res, 405, { reason: 'Method Not Allowed' });

    const path = url.pathname.startsWith(`${API}/`) ? url.pathname.slice(API.length) : undefined;
    const search = url.searchParams.get('search') ?? '';
    const max = url.searchParams.has('max') ? Number(url.searchParams.get('max')) : undefined;
    if (this.recorded !== undefined && path !== undefined) {
      const body = this.recorded.answer(path, url.searchParams);
      return body === undefined ? this.notFound(req, res) : this.send(req, res, 200, body);
    }
    let match: RegExpMatchArray | null;
    if (path === '/hosts')
      return this.send(req, res, 200, list('host', searchHosts(this.inventory, this.hiddenHosts, search, max).map(hostJson)));
    if ((match = path?.match(/^\/hosts\/([^/]+)$/) ?? null)) {
      const host = this.inventory.hosts.get(decodeURIComponent(match[1]!));
      return host && !this.hiddenHosts.has(host.id) ? this.send(req, res, 200, hostJson(host)) : this.notFound(req, res);
    }
    if (path === '/clusters') return this.send(req, res, 200, list('cluster', [...this.inventory.clusters.values()].map(clusterJson)));
    if (path === '/schedulingpolicyunits')
      return this.send(req, res, 200, list('scheduling_policy_unit', this.inventory.scheduling.units.map(unitJson)));
    if (path === '/schedulingpolicies')
      return this.send(req, res, 200, list('scheduling_policy', [...this.inventory.scheduling.policies.values()].map(policyJson)));
    if ((match = path?.match(/^\/schedulingpolicies\/([^/]+)\/weights$/) ?? null)) {
      const policy = this.inventory.scheduling.policies.get(decodeURIComponent(match[1]!));
      return policy
        ? this.send(
            req,
            res,
            200,
            list(
              'weight',
              policy.weights.map((w) => weightJson(policy, w)),
            ),
          )
        : this.notFound(req, res);
    }
    if (path === '/events') return this.send(req, res, 200, list('event', searchEvents(this.inventory, url.searchParams).map(eventJson)));
    if (path === '/vms') {
      if (this.answerCache !== undefined)
        return this.sendCached(req, res, url.search, () => list('vm', searchVms(this.inventory, search, max).map(vmJson)));
      return this.send(req, res, 200, list('vm', searchVms(this.inventory, search, max).map(vmJson)));
    }
    if ((match = path?.match(/^\/vms\/([^/]+)$/) ?? null)) {
      const vm = this.inventory.vms.get(decodeURIComponent(match[1]!));
      return vm ? this.send(req, res, 200, vmJson(vm)) : this.notFound(req, res);
    }
    return this.notFound(req, res);
  }

  private login(req: IncomingMessage, res: ServerResponse, body: string): void {
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== 'password' || form.get('username') !== this.username || form.get('password') !== this.password) {
      return this.send(req, res, 400, {
        error_code: 'access_denied',
        error: `Cannot authenticate user '${form.get('username') ?? ''}': The username or password is incorrect..`,
      });
    }
    const token = this.faults.badToken?.() ?? randomBytes(24).toString('base64url');
    this.tokens.add(token);
    this.send(req, res, 200, { access_token: token, token_type: 'bearer', scope: 'ovirt-app-api', exp: '9223372036854775807' });
  }

  private garbage(req: IncomingMessage, res: ServerResponse, kind: NonNullable<EngineFaults['garbage']>): void {
    this.record(req, 200, false);
    writeGarbage(res, kind);
  }

  private unauthorized(req: IncomingMessage, res: ServerResponse): void {
    this.record(req, 401, false);
    res.writeHead(401, { 'content-type': 'text/html;charset=utf-8', 'www-authenticate': 'Bearer' });
    res.end('<html><head><title>Error</title></head><body>Unauthorized</body></html>');
  }

  private notFound(req: IncomingMessage, res: ServerResponse): void {
    this.send(req, res, 404, { reason: 'Operation Failed', detail: 'Entity not found: null' });
  }

  private send(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): void {
    const json = Buffer.from(JSON.stringify(body));
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    this.record(req, status, gzip);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (gzip) headers['content-encoding'] = 'gzip';
    res.writeHead(status, headers);
    res.end(gzip ? gzipSync(json) : json);
  }

  private sendCached(req: IncomingMessage, res: ServerResponse, key: string, render: () => unknown): void {
    let hit = this.answerCache!.get(key);
    if (hit === undefined || hit.version !== this.inventory.version) {
      const json = Buffer.from(JSON.stringify(render()));
      hit = { version: this.inventory.version, json, gzip: gzipSync(json) };
      this.answerCache!.set(key, hit);
    }
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    this.record(req, 200, gzip);
    res.writeHead(200, { 'content-type': 'application/json', ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
    res.end(gzip ? hit.gzip : hit.json);
  }

  private record(req: IncomingMessage, status: number, gzipped: boolean): void {
    this.answered++;
    if (this.requestLog.capacity === 0) return;
    const url = new URL(req.url ?? '/', 'http://simulator');
    this.requestLog.add({
      method: req.method ?? 'GET',
      path: url.pathname.replace(/^\/ovirt-engine/, ''),
      query: url.searchParams,
      headers: req.headers,
      status,
      gzipped,
    });
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
