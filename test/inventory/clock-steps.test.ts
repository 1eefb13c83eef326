/**
 * The inventory's ages are measured on a monotonic clock: NTP stepping the wall clock, forward or back,
 * neither expires data just read nor holds a real change past its span. HostInventory and a worker's
 * ServedInventory on the real engine client against the simulated engine, with a wall clock the test steps.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HostInventory } from '../../src/inventory/inventory';
import { decodeSnapshotInSlices, generationMessage } from '../../src/inventory/replica';
import { ServedInventory } from '../../src/inventory/served';
import { createLogger } from '../../src/log';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { engineClient, inventorySettings, simulatedSites } from '../helpers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the inventory when the wall clock steps', () => {
  const site = simulatedSites();
  afterEach(() => site.stop());

  it('a clock stepped an hour forward while a full refresh reads the engine does not expire the inventory that refresh just read', async () => {
    const sim = await site.simulator();
    site.logs = [];
    const clock = { offset: 0 };
    const client = engineClient(sim);
    // The production clocks: a wall clock the test steps, and performance.now for ages (HostInventory hands
    // its options on to ServedInventory, which takes monotonicNow; its own options type does not list it).
    const options = {
      source: client,
      settings: inventorySettings({ eventsIntervalMs: 0, refreshIntervalMs: 300_000, maxStalenessMs: 600_000, staleAfterMs: 120_000 }),
      logger: createLogger('debug', { write: (l) => site.logs.push(l) }),
      now: () => Date.now() + clock.offset,
      monotonicNow: () => performance.now(),
    };
    const inv = new HostInventory(options);
    site.closers.push(async () => {
      await inv.stop();
      await client.close();
    });
    // NTP steps the clock while the VM pages are being read (a 100,000-VM refresh reads for about a minute).
    sim.faults.respond = (path) => {
      if (path === '/vms' && clock.offset === 0) clock.offset = 3_600_000;
      return false;
    };
    await inv.refresh();
    // The data was read a moment ago, on a clock that never jumps.
    expect(inv.checkState()).toBe('fresh');
    expect(() => inv.served.servableSnapshot()).not.toThrow();
  });

  it('a worker started after the clock stepped forward serves the generation its peers serve fresh (the same data, the same age)', async () => {
    const sim = await site.simulator();
    site.logs = [];
    const clock = { offset: 0 };
    const now = () => Date.now() + clock.offset;
    const monotonicNow = () => performance.now();
    const settings = inventorySettings({ eventsIntervalMs: 0, refreshIntervalMs: 300_000, maxStalenessMs: 600_000, staleAfterMs: 120_000 });
    const logger = createLogger('debug', { write: (l) => site.logs.push(l) });
    const client = engineClient(sim);
    // The primary's inventory (events off: full refreshes every 5 minutes), with the production clocks.
    const primaryOptions = { source: client, settings, logger, now, monotonicNow };
    const primary = new HostInventory(primaryOptions);
    // A worker's inventory as src/cluster/worker.ts makes it, on-demand reads through the primary's client.
    const worker = new ServedInventory({ source: client, settings, logger, now, monotonicNow });
    site.closers.push(async () => {
      await worker.stop();
      await primary.stop();
      await client.close();
    });
    const snapshot = await primary.refresh();
    clock.offset += 3_600_000; // NTP steps the clock an hour forward
    expect(primary.checkState()).toBe('fresh');
    // A worker replaced now gets the current generation, whole, over IPC (structured clone), and publishes it.
    // As src/cluster/primary.ts sends it (with the age measured on the primary's monotonic clock) and worker.ts publishes it.
    const message = structuredClone(generationMessage(snapshot, { kind: 'full' }, primary.age()));
    if (message.kind !== 'full') throw new Error('expected a full generation');
    worker.publish(await decodeSnapshotInSlices(message.snapshot), message.ageMs);
    expect(worker.checkState()).toBe(primary.checkState());
  });

  describe('the agreement span of held refreshes, across a wall-clock jump', () => {
    /** A HostInventory on the real engine client, with a wall clock the test can set forward or back. */
    const inventoryOn = (sim: SimulatedEngine, maxStalenessMs: number) => {
      const clock = { offset: 0 };
      const client = engineClient(sim);
      const inv = new HostInventory({
        source: client,
        settings: inventorySettings({ eventsIntervalMs: 0, refreshIntervalMs: 300_000, maxStalenessMs, staleAfterMs: maxStalenessMs / 2 }),
        logger: createLogger('debug', { write: (l) => site.logs.push(l) }),
        now: () => Date.now() + clock.offset,
        // As in production (src/service.ts injects no clock): the span is measured on performance.now.
        monotonicNow: () => performance.now(),
      });
      site.closers.push(async () => {
        await inv.stop();
        await client.close();
      });
      return { inv, clock };
    };

    it('a clock set an hour forward does not let three refreshes read within a second publish a 60% VM fall', async () => {
      const sim = await site.simulator({ vms: 200 });
      site.logs = [];
      const { inv, clock } = inventoryOn(sim, 600_000);
      await inv.refresh();
      expect(inv.snapshot()!.vmCount).toBe(200);
      // A broken answer: 60% of the VMs missing.
      for (const id of [...sim.inventory.vms.keys()].slice(0, 120)) sim.inventory.removeVm(id);
      await expect(inv.refresh()).rejects.toThrow(/not published/);
      clock.offset += 3_600_000; // NTP steps the clock an hour forward
      await expect(inv.refresh()).rejects.toThrow(/not published/);
      // Less than a second of real time since the first held read: nowhere near the 2-minute span.
      await expect(inv.refresh()).rejects.toThrow(/not published/);
      expect(inv.snapshot()!.vmCount).toBe(200);
    });

    it('a clock set an hour back does not keep a real mass change held past the agreement span (and the inventory into expiry)', async () => {
      const sim = await site.simulator({ vms: 200 });
      site.logs = [];
      // Maximum staleness 4 s: the agreement span is a quarter of it, 1 s.
      const { inv, clock } = inventoryOn(sim, 4_000);
      await inv.refresh();
      for (const id of [...sim.inventory.vms.keys()].slice(0, 120)) sim.inventory.removeVm(id);
      await expect(inv.refresh()).rejects.toThrow(/not published/);
      clock.offset -= 3_600_000; // the clock set back an hour
      await sleep(700);
      await expect(inv.refresh()).rejects.toThrow(/not published/);
      await sleep(700);
      // Three agreeing reads over 1.4 s of real time, more than the 1 s span: a real change, published.
      await inv.refresh();
      expect(inv.snapshot()!.vmCount).toBe(80);
    });
  });
});
