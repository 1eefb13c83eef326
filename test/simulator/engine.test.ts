/** The simulated engine itself: what it keeps of the requests it serves. */
import { afterEach, describe, expect, it } from 'vitest';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { engineClient, startSimulator } from '../helpers';

describe('the simulated engine', () => {
  let sim: SimulatedEngine;
  afterEach(async () => sim.stop());

  it('remembers a bounded number of requests, the newest kept: serving for days does not grow without end', async () => {
    sim = await startSimulator({ hosts: 2, vms: 4, maxRecorded: 10 });
    const client = engineClient(sim);
    try {
      for (let i = 0; i < 30; i++) await client.getHost(`00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    } finally {
      await client.close();
    }
    // 30 GETs and a login (and, at close, a logout): never more than 10 kept, the last GET among them.
    expect(sim.requests.length).toBeLessThanOrEqual(10);
    expect(sim.arrived.length).toBeLessThanOrEqual(10);
    expect(sim.arrived).toContain('/api/hosts/00000000-0000-4000-8000-000000000029');
    expect(sim.apiRequests().at(-1)?.path).toBe('/api/hosts/00000000-0000-4000-8000-000000000029');
  });
});
