/** The compact VM table against a plain Map, the model it replaces: same answers, same order, whatever is set. */
import fc from 'fast-check';
import { deserialize, serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { VmTable } from '../../src/inventory/vm-table';
import type { OsIdentity } from '../../src/ovirt/model';

const OSES: OsIdentity[] = [
  { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' },
  { type: 'windows_2022', version: '' },
  { type: '', version: '' },
];
const HOSTS = [undefined, '10000000-0000-4000-8000-000000000001', '10000000-0000-4000-8000-000000000002'];
/** UUIDs, and ids no engine sends but a table must still hold: short, long, non-ASCII, empty. */
const idArb = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 3_000 }).map((n) => `20000000-0000-4000-8000-${String(n).padStart(12, '0')}`) },
  { weight: 1, arbitrary: fc.constantFrom('v1', '', 'é'.repeat(36), 'x'.repeat(37), `20000000-0000-4000-8000-00000000000\u00e9`) },
);
const opsArb = fc.array(fc.tuple(idArb, fc.constantFrom(...HOSTS), fc.constantFrom(...OSES)), { maxLength: 4_000 });

describe('VmTable', () => {
  it('answers as a Map would: get, has, size, and entries in the order first set, placements as last set', () => {
    fc.assert(
      fc.property(opsArb, (ops) => {
        const table = new VmTable();
        const model = new Map<string, { hostId: string | undefined; os: OsIdentity }>();
        for (const [id, hostId, os] of ops) {
          const before = table.set(id, hostId, os);
          expect(before).toEqual(model.get(id));
          model.set(id, { hostId, os });
        }
        expect(table.size).toBe(model.size);
        expect([...table.entries()]).toEqual([...model.entries()]);
        for (const [id] of ops.slice(0, 50)) expect(table.get(id)).toEqual(model.get(id));
        expect(table.get('30000000-0000-4000-8000-000000000000')).toBeUndefined();
        expect(table.has('nope')).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('a copy sent to another process (v8 serialisation, as IPC does) answers the same without being rebuilt', () => {
    fc.assert(
      fc.property(opsArb, (ops) => {
        const table = new VmTable();
        for (const [id, hostId, os] of ops) table.set(id, hostId, os);
        const copy = VmTable.decode(deserialize(serialize(table.encode())));
        expect([...copy.entries()]).toEqual([...table.entries()]);
        for (const [id] of ops.slice(0, 50)) expect(copy.get(id)).toEqual(table.get(id));
      }),
      { numRuns: 50 },
    );
  });

  it('grows from 1,024 to 200,000 VMs, every id still found', () => {
    const table = new VmTable();
    const id = (n: number) => `${n.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`;
    for (let n = 0; n < 200_000; n++) table.set(id(n), HOSTS[n % 3], OSES[n % 3]!);
    expect(table.size).toBe(200_000);
    for (let n = 0; n < 200_000; n += 997) expect(table.get(id(n))).toEqual({ hostId: HOSTS[n % 3], os: OSES[n % 3] });
    expect(table.get(id(200_000))).toBeUndefined();
  });
});
