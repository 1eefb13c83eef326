import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EngineClient } from '../../src/ovirt/client';
import type { EngineVm } from '../../src/ovirt/model';
import { createLogger } from '../../src/log';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { engineClient, startSimulator } from '../helpers';

describe('EngineClient against the simulated engine', () => {
  let sim: SimulatedEngine;
  let client: EngineClient;
  let logs: string[];

  const makeClient = (overrides: { password?: string; pageSize?: number; url?: string; requestTimeoutMs?: number } = {}) =>
    engineClient(sim, { ...overrides, logger: createLogger('debug', { write: (line) => logs.push(line) }) });

  beforeEach(async () => {
    logs = [];
    sim = await startSimulator({ hosts: 5, vms: 30, seed: 3 });
    client = makeClient();
  });
  afterEach(async () => {
    await client.close();
    await sim.stop();
  });

  it('logs in with the password grant and sends Bearer, Version 4, JSON and gzip headers', async () => {
    const hosts = await client.listHosts();
    expect(hosts.map((h) => h.id).sort()).toEqual([...sim.inventory.hosts.keys()].sort());
    const login = sim.requests.find((r) => r.path === '/sso/oauth/token')!;
    expect(login.method).toBe('POST');
    const api = sim.apiRequests()[0]!;
    expect(api.headers.authorization).toMatch(/^Bearer \S+$/);
    expect(api.headers.version).toBe('4');
    expect(api.headers.accept).toBe('application/json');
    expect(api.headers['accept-encoding']).toMatch(/gzip/);
  });

  /** Every VM through the paged read the inventory uses. */
  const allVms = async (c: EngineClient) => {
    const vms: EngineVm[] = [];
    await c.forEachVmPage((page) => vms.push(...page));
    return vms;
  };

  it('reads gzip-compressed answers', async () => {
    const vms = await allVms(client);
    expect(vms).toHaveLength(30);
    expect(sim.apiRequests().every((r) => r.gzipped)).toBe(true);
  });

  it('pages GET /vms with search "page N" and max, until a short page', async () => {
    const paged = makeClient({ pageSize: 7 });
    try {
      const vms = await allVms(paged);
      expect(new Set(vms.map((v) => v.id))).toEqual(new Set(sim.inventory.vms.keys()));
      const pages = sim.apiRequests().filter((r) => r.path === '/api/vms');
      // 30 VMs, 7 a page: 7 + 7 + 7 + 7 + 2 = 5 requests
      expect(pages.map((r) => r.query.get('search'))).toEqual([1, 2, 3, 4, 5].map((n) => `sortby name asc page ${n}`));
      expect(pages.every((r) => r.query.get('max') === '7')).toBe(true);
    } finally {
      await paged.close();
    }
  });

  it('takes the exact multiple of the page size with one more (empty, {}) page', async () => {
    const paged = makeClient({ pageSize: 10 });
    try {
      expect(await allVms(paged)).toHaveLength(30);
      expect(sim.apiRequests().filter((r) => r.path === '/api/vms')).toHaveLength(4);
    } finally {
      await paged.close();
    }
  });

  it('logs in again once on a 401 (expired token, HTML body) and retries', async () => {
    await client.listHosts();
    sim.expireTokens();
    const hosts = await client.listHosts();
    expect(hosts).toHaveLength(5);
    const paths = sim.requests.map((r) => `${r.status} ${r.path}`);
    expect(paths).toEqual(['200 /sso/oauth/token', '200 /api/hosts', '401 /api/hosts', '200 /sso/oauth/token', '200 /api/hosts']);
  });

  it('shares one login between concurrent requests', async () => {
    await Promise.all([client.listHosts(), client.listHosts(), client.getVm([...sim.inventory.vms.keys()][0]!)]);
    expect(sim.requests.filter((r) => r.path === '/sso/oauth/token')).toHaveLength(1);
  });

  it('reports bad credentials (HTTP 400) as engine_auth, without the password', async () => {
    const bad = makeClient({ password: 'wrong-secret-123' });
    try {
      const err = await bad.listHosts().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'engine_auth' });
      expect((err as Error).message).toMatch(/refused the login of admin@internal/);
      expect(JSON.stringify(err)).not.toContain('wrong-secret-123');
      expect(logs.join('')).not.toContain('wrong-secret-123');
    } finally {
      await bad.close();
    }
  });

  it('returns undefined for a VM or host the engine does not have (404)', async () => {
    expect(await client.getVm('00000000-0000-4000-8000-000000000000')).toBeUndefined();
    expect(await client.getHost('00000000-0000-4000-8000-000000000000')).toBeUndefined();
  });

  it('lists the VMs of one host, {} when it has none', async () => {
    const empty = sim.inventory.addHost('empty.example.com');
    expect(await client.listVmsOnHost(empty)).toEqual([]);
    const busy = [...sim.inventory.hosts.values()].find((h) => sim.inventory.vmsOn(h.id).length > 0)!;
    const vms = await client.listVmsOnHost(busy);
    expect(vms.map((v) => v.id).sort()).toEqual(
      sim.inventory
        .vmsOn(busy.id)
        .map((v) => v.id)
        .sort(),
    );
  });

  it('revokes its token on close', async () => {
    await client.listHosts();
    await client.close();
    expect(sim.requests.at(-1)?.path).toBe('/services/sso-logout');
    client = makeClient();
  });

  it('turns a refused connection into engine_unreachable', async () => {
    const url = sim.url;
    await sim.stop();
    const down = makeClient({ url });
    try {
      await expect(down.listHosts()).rejects.toMatchObject({ code: 'engine_unreachable' });
    } finally {
      await down.close();
    }
    sim = await startSimulator();
  });

  it('times out a hanging engine with the header timeout', async () => {
    sim.latencyMs = 2_000;
    const slow = makeClient({ requestTimeoutMs: 200 });
    try {
      await expect(slow.listHosts()).rejects.toMatchObject({ code: 'engine_unreachable' });
    } finally {
      await slow.close();
    }
  });

  it('reports a non-JSON body with status 200 as engine_protocol', async () => {
    const html = createServer((req, res) => {
      if (req.url?.includes('oauth/token')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"t"}');
      } else {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html>maintenance</html>');
      }
    });
    await new Promise<void>((r) => html.listen(0, '127.0.0.1', r));
    const weird = makeClient({ url: `http://127.0.0.1:${(html.address() as AddressInfo).port}/ovirt-engine/api` });
    try {
      await expect(weird.listHosts()).rejects.toMatchObject({ code: 'engine_protocol' });
    } finally {
      await weird.close();
      html.closeAllConnections();
      await new Promise((r) => html.close(r));
    }
  });
});
