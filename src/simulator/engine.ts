/**
 * A simulated oVirt engine: a real HTTP server speaking the REST API v4 JSON
 * the service reads (see shared/reference/ovirt.md): OAuth password grant,
 * HTML 401 pages for bad tokens, integers as strings, `{}` for empty lists,
 * paging through `search=... page N` with `max`, and gzip on request. It
 * records every request so tests can count what the service asked.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { RecordedEngine } from '../recording/replay';
import type { SimPolicy, SimPolicyUnit } from './scheduling';
import { type SimCluster, SimInventory, type SimEvent, type SimInventoryOptions, type SimHost, type SimVm } from './inventory';

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
   * Requests remembered for tests (`requests`, `arrived`), default 10,000; older ones are forgotten,
   * so a simulator serving for days (`serve` without OVIRT_URL) stays bounded.
   */
  readonly maxRecorded?: number;
}

/** Trouble the simulated engine can be told to make, for fault-injection tests. */
export interface EngineFaults {
  /** Answer every API request with this HTTP status (e.g. 503), a JSON fault body. */
  status?: number;
  /** Answer API requests with a broken 200: cut-off JSON, an HTML page, or fields of the wrong type. */
  garbage?: 'truncated' | 'html' | 'wrong-types';
  /** Hold API requests without answering until the fault is cleared. */
  hang?: boolean;
  /** 401 to every API request, fresh tokens included. */
  unauthorized?: boolean;
  /** After this many more API requests, forget every token once (expiry mid-refresh). */
  expireTokensAfter?: number;
  /** Hold logins without answering until the fault is cleared. */
  hangLogin?: boolean;
  /** Hand out this text as the next access tokens (a hostile or broken SSO), instead of good ones. */
  badToken?: () => string | undefined;
  /**
   * A hostile answer: called for each authorised API request with its path below /api;
   * returns true when it answered (oversized, dripped, deeply nested, duplicated...).
   */
  respond?: (path: string, req: IncomingMessage, res: ServerResponse) => boolean;
}

export interface RecordedRequest {
  readonly method: string;
  /** Path below /ovirt-engine, without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  readonly status: number;
  readonly gzipped: boolean;
}

const API = '/ovirt-engine/api';

const VM_LINKS = [
  'affinitylabels', 'applications', 'backups', 'cdroms', 'checkpoints', 'diskattachments', 'graphicsconsoles',
  'hostdevices', 'katelloerrata', 'mediateddevices', 'nics', 'numanodes', 'permissions', 'reporteddevices',
  'sessions', 'snapshots', 'statistics', 'tags', 'watchdogs', 'dynamicaffinitylabels',
];
const VM_ACTIONS = [
  'start', 'stop', 'shutdown', 'suspend', 'migrate', 'cancelmigration', 'reboot', 'reset', 'detach',
  'export', 'previewsnapshot', 'commitsnapshot', 'undosnapshot', 'ticket', 'logon', 'freezefilesystems',
];

export class SimulatedEngine {
  readonly inventory: SimInventory;
  readonly requests: RecordedRequest[] = [];
  /** Paths of API requests as they arrive, before any latency or fault: a test knows a request is in flight. */
  readonly arrived: string[] = [];
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

  private readonly maxRecorded: number;

  constructor(options: SimulatedEngineOptions) {
    this.inventory = new SimInventory(options);
    this.maxRecorded = options.maxRecorded ?? 10_000;
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

  /** API requests (login and logout excluded) recorded so far. */
  apiRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.path.startsWith('/api/'));
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
    remember(this.arrived, this.maxRecorded, url.pathname.replace(/^\/ovirt-engine/, ''));
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
    if (path === '/hosts') return this.send(req, res, 200, list('host', this.searchHosts(search, max).map(hostJson)));
    if ((match = path?.match(/^\/hosts\/([^/]+)$/) ?? null)) {
      const host = this.inventory.hosts.get(decodeURIComponent(match[1]!));
      return host && !this.hiddenHosts.has(host.id) ? this.send(req, res, 200, hostJson(host)) : this.notFound(req, res);
    }
    if (path === '/clusters') return this.send(req, res, 200, list('cluster', [...this.inventory.clusters.values()].map(clusterJson)));
    if (path === '/schedulingpolicyunits') return this.send(req, res, 200, list('scheduling_policy_unit', this.inventory.scheduling.units.map(unitJson)));
    if (path === '/schedulingpolicies') return this.send(req, res, 200, list('scheduling_policy', [...this.inventory.scheduling.policies.values()].map(policyJson)));
    if ((match = path?.match(/^\/schedulingpolicies\/([^/]+)\/weights$/) ?? null)) {
      const policy = this.inventory.scheduling.policies.get(decodeURIComponent(match[1]!));
      return policy ? this.send(req, res, 200, list('weight', policy.weights.map((w) => weightJson(policy, w)))) : this.notFound(req, res);
    }
    if (path === '/events') return this.send(req, res, 200, list('event', this.searchEvents(url.searchParams)));
    if (path === '/vms') {
      if (this.answerCache !== undefined) return this.sendCached(req, res, url.search, () => list('vm', this.searchVms(search, max).map(vmJson)));
      return this.send(req, res, 200, list('vm', this.searchVms(search, max).map(vmJson)));
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

  /** Engine search, the part the service uses: on_host=NAME, hosts.id=ID, sortby name asc, page N. */
  private searchVms(search: string, max: number | undefined): SimVm[] {
    const sorted = /sortby\s+name(\s+asc)?/.test(search);
    let vms: readonly SimVm[] = sorted ? this.inventory.vmsByName() : [...this.inventory.vms.values()];
    const onHost = /(?:^|\s)on_host\s*=\s*(\S+)/.exec(search)?.[1];
    if (onHost !== undefined) {
      const host = [...this.inventory.hosts.values()].find((h) => h.name === onHost);
      vms = host === undefined ? [] : vms.filter((vm) => vm.hostId === host.id);
    }
    // The old plugin's fuzzy `host=NAME` (a substring match on real engines).
    const hostLike = /(?:^|\s)host\s*=\s*(\S+)/.exec(search)?.[1];
    if (hostLike !== undefined) {
      const ids = new Set([...this.inventory.hosts.values()].filter((h) => h.name.includes(hostLike)).map((h) => h.id));
      vms = vms.filter((vm) => vm.hostId !== undefined && ids.has(vm.hostId));
    }
    const hostsId = /(?:^|\s)hosts\.id\s*=\s*(\S+)/.exec(search)?.[1];
    if (hostsId !== undefined) vms = vms.filter((vm) => vm.hostId === hostsId);
    return page(vms, search, max);
  }

  /** Events with id > from, newest first, at most max: the newest ones when there are more. */
  private searchEvents(params: URLSearchParams): unknown[] {
    const from = Number(params.get('from') ?? '0');
    const max = params.has('max') ? Number(params.get('max')) : Infinity;
    const out: unknown[] = [];
    const events = this.inventory.events;
    for (let i = events.length - 1; i >= 0 && out.length < max; i--) {
      const e = events[i]!;
      if (e.id <= from) break;
      out.push(eventJson(e));
    }
    return out;
  }

  private garbage(req: IncomingMessage, res: ServerResponse, kind: NonNullable<EngineFaults['garbage']>): void {
    this.record(req, 200, false);
    if (kind === 'html') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Engine is starting, please wait</body></html>');
    } else if (kind === 'truncated') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"vm": [{"id": "a1293e54-dae8-496f-baa4-277195921');
    } else {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"vm": "none", "host": 5, "event": true, "id": {"x": 1}}');
    }
  }

  /** `id=A or id=B ...`, as the old plugin asked; anything else lists every host. */
  private searchHosts(search: string, max: number | undefined): SimHost[] {
    const ids = [...search.matchAll(/(?:^|\s)id\s*=\s*([0-9a-f-]+)/g)].map((m) => m[1]!);
    const hosts = ids.length > 0 ? ids.flatMap((id) => this.inventory.hosts.get(id) ?? []) : [...this.inventory.hosts.values()];
    return page(hosts.filter((h) => !this.hiddenHosts.has(h.id)), search, max);
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
    const url = new URL(req.url ?? '/', 'http://simulator');
    remember(this.requests, this.maxRecorded, {
      method: req.method ?? 'GET',
      path: url.pathname.replace(/^\/ovirt-engine/, ''),
      query: url.searchParams,
      headers: req.headers,
      status,
      gzipped,
    });
  }
}

/** Appends, dropping the oldest half once `max` is reached (amortised O(1) a request). */
function remember<T>(list: T[], max: number, item: T): void {
  if (list.length >= max) list.splice(0, Math.ceil(max / 2));
  list.push(item);
}

function page<T>(items: readonly T[], search: string, max: number | undefined): T[] {
  if (max === undefined || !Number.isFinite(max)) return [...items];
  const n = Number(/(?:^|\s)page\s+(\d+)/.exec(search)?.[1] ?? '1');
  return items.slice((n - 1) * max, n * max);
}

/** The engine's list wrapper; an empty list is `{}`, as real engines send it. */
function list(key: string, items: unknown[]): Record<string, unknown> {
  return items.length === 0 ? {} : { [key]: items };
}

function eventJson(e: SimEvent): Record<string, unknown> {
  return {
    href: `${API}/events/${e.id}`,
    id: String(e.id),
    code: String(e.code),
    severity: 'normal',
    time: e.time,
    description: e.description,
    origin: 'oVirt',
    ...(e.vm ? { vm: { href: `${API}/vms/${e.vm.id}`, id: e.vm.id } } : {}),
    ...(e.host ? { host: { href: `${API}/hosts/${e.host.id}`, id: e.host.id } } : {}),
  };
}

/** A host as the engine writes it (exported for tests that hand-craft answers). */
export function hostJson(host: SimHost): Record<string, unknown> {
  return {
    href: `${API}/hosts/${host.id}`,
    id: host.id,
    name: host.name,
    address: host.name,
    status: host.status,
    cluster: { href: `${API}/clusters/${host.clusterId}`, id: host.clusterId },
    memory: '405874409472',
    max_scheduling_memory: '390123456512',
    cpu: { topology: { cores: '16', sockets: '2', threads: '2' } },
    os: { type: 'RHEL', version: { full_version: '8.9 - 1.el8', major: '8', minor: '9' } },
    ksm: { enabled: String(host.ksmEnabled), merge_across_nodes: 'true' },
    link: ['nics', 'statistics', 'storage', 'tags', 'permissions'].map((rel) => ({ href: `${API}/hosts/${host.id}/${rel}`, rel })),
  };
}

function clusterJson(cluster: SimCluster): Record<string, unknown> {
  return {
    href: `${API}/clusters/${cluster.id}`,
    id: cluster.id,
    name: cluster.name,
    description: '',
    ballooning_enabled: 'true',
    cpu: { architecture: 'x86_64', type: 'Secure Intel Cascadelake Server Family' },
    ksm: { enabled: String(cluster.ksmEnabled), merge_across_nodes: 'true' },
    memory_policy: { over_commit: { percent: '100' }, transparent_hugepages: { enabled: 'true' } },
    version: { major: '4', minor: '7' },
    ...(cluster.schedulingPolicyId === undefined ? {} : { scheduling_policy: { href: `${API}/schedulingpolicies/${cluster.schedulingPolicyId}`, id: cluster.schedulingPolicyId } }),
    data_center: { href: `${API}/datacenters/00000001-0001-0001-0001-000000000311`, id: '00000001-0001-0001-0001-000000000311' },
    link: ['affinitygroups', 'glustervolumes', 'networks', 'permissions'].map((rel) => ({ href: `${API}/clusters/${cluster.id}/${rel}`, rel })),
  };
}

/** types/SchedulingPolicyUnit.java: type (filter | weight | load_balancing), internal, enabled; booleans as strings. */
function unitJson(unit: SimPolicyUnit): Record<string, unknown> {
  return {
    href: `${API}/schedulingpolicyunits/${unit.id}`,
    id: unit.id,
    name: unit.name,
    description: unit.description,
    enabled: String(unit.enabled),
    internal: String(unit.internal),
    type: unit.type,
  };
}

/** types/SchedulingPolicy.java; its weights are the sub-collection /schedulingpolicies/{id}/weights. */
function policyJson(policy: SimPolicy): Record<string, unknown> {
  const href = `${API}/schedulingpolicies/${policy.id}`;
  return {
    href,
    id: policy.id,
    name: policy.name,
    description: '',
    default_policy: String(policy.defaultPolicy),
    locked: String(policy.locked),
    properties: {},
    link: ['balances', 'filters', 'weights'].map((rel) => ({ href: `${href}/${rel}`, rel })),
  };
}

/** types/Weight.java: factor (an integer, as a string), links to the policy and the unit; the weight's id is the unit's. */
function weightJson(policy: SimPolicy, w: { unitId: string; factor: number }): Record<string, unknown> {
  return {
    href: `${API}/schedulingpolicies/${policy.id}/weights/${w.unitId}`,
    id: w.unitId,
    factor: String(w.factor),
    scheduling_policy: { href: `${API}/schedulingpolicies/${policy.id}`, id: policy.id },
    scheduling_policy_unit: { href: `${API}/schedulingpolicyunits/${w.unitId}`, id: w.unitId },
  };
}

/** A VM as the engine writes it (exported for tests that hand-craft pages). */
export function vmJson(vm: SimVm): Record<string, unknown> {
  const href = `${API}/vms/${vm.id}`;
  const json: Record<string, unknown> = {
    href,
    id: vm.id,
    name: vm.name,
    status: vm.hostId === undefined ? 'down' : 'up',
    memory: '4294967296',
    creation_time: 1700000000000,
    cpu: { topology: { cores: '2', sockets: '1', threads: '1' } },
    os: vm.osType === undefined ? { boot: { devices: { device: ['hd'] } } } : { type: vm.osType, boot: { devices: { device: ['hd'] } } },
    cluster: { href: `${API}/clusters/00000002-0002-0002-0002-00000000017a`, id: '00000002-0002-0002-0002-00000000017a' },
    template: { href: `${API}/templates/00000000-0000-0000-0000-000000000000`, id: '00000000-0000-0000-0000-000000000000' },
    actions: { link: VM_ACTIONS.map((rel) => ({ href: `${href}/${rel}`, rel })) },
    link: VM_LINKS.map((rel) => ({ href: `${href}/${rel}`, rel })),
  };
  if (vm.hostId !== undefined) json.host = { href: `${API}/hosts/${vm.hostId}`, id: vm.hostId };
  if (vm.guest !== undefined) {
    const [major = '', minor = ''] = vm.guest.fullVersion.split('.');
    json.guest_operating_system = {
      architecture: 'x86_64',
      family: vm.guest.family,
      ...(vm.guest.distribution === '' ? {} : { distribution: vm.guest.distribution }),
      version: { full_version: vm.guest.fullVersion, major, minor },
    };
  }
  return json;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
