/**
 * Property: whatever records an engine corrupts, a full refresh publishes
 * exactly the valid part when few are corrupted, and keeps the last good
 * inventory when too many are. Random inventories are served as 4.4 writes
 * them (strings for integers and booleans, `{}` for an empty list) by the
 * simulated engine, through the real EngineClient, over loopback.
 */
import fc from 'fast-check';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostInventory } from '../../src/inventory/inventory';
import { silentLogger } from '../../src/log';
import type { EngineClient } from '../../src/ovirt/client';
import { seededRandom, seededUuid } from '../../src/simulator/random';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { engineClient, inventorySettings, startSimulator } from '../helpers';

type Json = Record<string, unknown>;
const MAX_REJECTED_PERCENT = 10;

/** Ways a real or broken engine spoils one record; each makes it unusable. */
const CORRUPTIONS: readonly ((r: Json) => unknown)[] = [
  (r) => ({ ...r, id: undefined }),
  (r) => ({ ...r, id: `${String(r.id).slice(0, 8)}` }),
  (r) => ({ ...r, id: { nested: r.id } }),
  () => 'a string where a record belongs',
  () => null,
  (r) => (r.os !== undefined ? { ...r, host: { id: 'Default' } } : { ...r, name: 'n\u0000' }), // a VM's host reference, a host's name
  (r) => (r.os !== undefined ? { ...r, os: { type: 'x'.repeat(300) } } : { ...r, name: 'x'.repeat(300) }),
];

interface Case {
  readonly hosts: Json[];
  readonly vms: Json[];
  /** Indexes into hosts ++ vms of the corrupted records, with the corruption used. */
  readonly corrupt: ReadonlyMap<number, number>;
}

const caseArb = fc
  .record({
    seed: fc.integer({ min: 1, max: 2 ** 30 }),
    hostCount: fc.integer({ min: 1, max: 12 }),
    vmCount: fc.integer({ min: 0, max: 120 }),
  })
  .chain(({ seed, hostCount, vmCount }) => {
    const random = seededRandom(seed);
    const hosts = Array.from({ length: hostCount }, (_, i): Json => ({
      id: seededUuid(random),
      name: `h${i}.example.com`,
      status: 'up',
      ksm: { enabled: i % 2 === 0 ? 'true' : 'false' },
    }));
    const vms = Array.from({ length: vmCount }, (_, i): Json => {
      const running = random() < 0.7;
      return {
        id: seededUuid(random),
        name: `vm-${String(i).padStart(4, '0')}`,
        memory: '2147483648',
        os: { type: ['rhel_8x64', 'rhel_9x64', 'windows_2022', 'other'][Math.floor(random() * 4)] },
        ...(running ? { host: { id: hosts[Math.floor(random() * hosts.length)]!.id } } : {}),
        ...(random() < 0.5
          ? { guest_operating_system: { distribution: 'Red Hat Enterprise Linux', version: { full_version: '8.6', major: '8' } } }
          : {}),
      };
    });
    const total = hosts.length + vms.length;
    return fc
      .uniqueArray(fc.tuple(fc.integer({ min: 0, max: total - 1 }), fc.integer({ min: 0, max: CORRUPTIONS.length - 1 })), {
        maxLength: Math.min(total, 30),
        selector: ([i]) => i,
      })
      .map((picked): Case => ({ hosts, vms, corrupt: new Map(picked) }));
  });

describe('a full refresh with corrupted records', () => {
  let sim: SimulatedEngine;
  let client: EngineClient;
  let answer: { hosts: unknown[]; vms: unknown[] } = { hosts: [], vms: [] };

  beforeAll(async () => {
    sim = await startSimulator({ hosts: 1, vms: 0 });
    sim.faults.respond = (path, _req, res: ServerResponse) => {
      const items = path === '/hosts' ? answer.hosts : path === '/vms' ? answer.vms : undefined;
      if (items === undefined) return false;
      const key = path === '/hosts' ? 'host' : 'vm';
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(items.length === 0 ? {} : { [key]: items }));
      return true;
    };
    client = engineClient(sim, { pageSize: 100_000 });
  });
  afterAll(async () => {
    await client.close();
    await sim.stop();
  });

  it('publishes exactly the valid records when few of each kind are corrupted, else keeps the last good inventory', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ hosts, vms, corrupt }) => {
        const inv = new HostInventory({
          source: client,
          logger: silentLogger,
          // Drops have their own guard and tests: here every fall is taken, so only corruption decides.
          settings: inventorySettings({ eventsIntervalMs: 0, maxRejectedPercent: MAX_REJECTED_PERCENT, maxDropPercent: 100 }),
        });
        try {
          // The last good inventory: one clean host, no VMs.
          answer = { hosts: [{ id: 'a0000000-0000-4000-8000-000000000001', name: 'good' }], vms: [] };
          const good = await inv.refresh();

          const served = (list: Json[], offset: number) =>
            list.map((r, i) => (corrupt.has(offset + i) ? CORRUPTIONS[corrupt.get(offset + i)!]!(r) : r));
          answer = { hosts: served(hosts, 0), vms: served(vms, hosts.length) };
          const validHosts = hosts.filter((_, i) => !corrupt.has(i));
          const validVms = vms.filter((_, i) => !corrupt.has(hosts.length + i));
          // Per kind: none usable, or at least 3 unusable and more than the share (publish-guard.ts).
          const held = (listed: number, leftOut: number) =>
            leftOut > 0 && (leftOut === listed || (leftOut >= 3 && 100 * leftOut > MAX_REJECTED_PERCENT * listed));
          const tooMany = held(hosts.length, hosts.length - validHosts.length) || held(vms.length, vms.length - validVms.length);

          // What the refresh did, against what it should have done: refused, keeping the last good
          // inventory, or published exactly the valid records.
          const outcome = await inv.refresh().then(
            () => {
              const snap = inv.snapshot()!;
              return {
                published: true,
                hostIds: snap.hostIds,
                vms: [...snap.vms.entries()].map(([id, p]) => [id, p.hostId]),
                vmCounts: validHosts.map((h) => snap.hosts.get(h.id as string)?.vmCount),
              };
            },
            (err: unknown) => ({ published: false, error: err instanceof Error, keptLastGood: inv.snapshot() === good }),
          );
          expect(outcome).toEqual(
            tooMany
              ? { published: false, error: true, keptLastGood: true }
              : {
                  published: true,
                  hostIds: validHosts.map((h) => h.id),
                  vms: validVms.map((vm) => [vm.id, (vm.host as Json | undefined)?.id]),
                  // A VM counts toward its host when that host is in the published list.
                  vmCounts: validHosts.map((h) => validVms.filter((vm) => (vm.host as Json | undefined)?.id === h.id).length),
                },
          );
        } finally {
          await inv.stop();
        }
      }),
      { numRuns: 60, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) },
    );
  }, 60_000);
});
