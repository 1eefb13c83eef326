/** The simulated engine itself: what it keeps of the requests it serves. */
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load';
import { connectEngine } from '../../src/engine';
import { silentLogger } from '../../src/log';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { engineClient, startSimulator } from '../helpers';

const hostId = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
/** The API paths of the GETs of hosts `from` to `to`. */
const hostPaths = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `/api/hosts/${hostId(from + i)}`);

/** 30 GETs of /hosts/{id} (ids 0 to 29) after a login, as the service's engine client makes them. */
async function thirtyGets(sim: SimulatedEngine): Promise<void> {
  const client = engineClient(sim);
  try {
    for (let i = 0; i < 30; i++) await client.getHost(hostId(i));
  } finally {
    await client.close();
  }
}

describe('the simulated engine', () => {
  let sim: SimulatedEngine | undefined;
  afterEach(async () => {
    await sim?.stop();
    sim = undefined;
  });

  it('remembers a bounded number of requests, the newest kept: serving for days does not grow without end', async () => {
    sim = await startSimulator({ hosts: 2, vms: 4, maxRecorded: 10 });
    await thirtyGets(sim);
    // A login, 30 GETs and a logout at close: the newest 10 kept, oldest first, the last GET among them.
    expect(sim.requests.map((r) => r.path)).toEqual([...hostPaths(21, 29), '/services/sso-logout']);
    expect(sim.arrived).toEqual(hostPaths(20, 29));
    expect(sim.apiRequests().at(-1)?.path).toBe(`/api/hosts/${hostId(29)}`);
    expect(sim.requestCount).toBe(32);
  });

  it('forgets what it recorded when a test says so, and counts from there', async () => {
    sim = await startSimulator({ hosts: 2, vms: 4 });
    await thirtyGets(sim);
    expect(sim.requests).toHaveLength(32);
    sim.forgetRequests();
    expect(sim.requests).toHaveLength(0);
    await thirtyGets(sim);
    expect(sim.apiRequests().map((r) => r.path)).toEqual(hostPaths(0, 29));
  });

  it("serve's embedded simulator (no OVIRT_URL) records no request: it answers and counts, and keeps nothing", async () => {
    const engine = await connectEngine(loadConfig({ KSM_SCORER_SIM_HOSTS: '2', KSM_SCORER_SIM_VMS: '4' }), silentLogger);
    sim = engine.simulator!;
    await thirtyGets(sim);
    expect(sim.requestCount).toBe(32);
    expect(sim.requests).toHaveLength(0);
    expect(sim.arrived).toHaveLength(0);
  });
});
