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

/**
 * `n` well-formed lower-case UUIDs whose FNV-1a hashes (vm-table.ts) share their low 16 bits, so they
 * all land in one probe run of any table up to 32,768 VMs. The low bits of FNV-1a depend only on the
 * low bits of its state, and XOR and an odd multiplier are invertible: for each 4-hex-digit tail the
 * state that ends on the target is computed backwards once; random heads then need one lookup each.
 */
function collidingIds(n: number): string[] {
  const HEX = '0123456789abcdef';
  const P = 0x01000193;
  let inv = P & 0xffff;
  for (let i = 0; i < 5; i++) inv = Math.imul(inv, 2 - Math.imul(P & 0xffff, inv)) & 0xffff;
  const tailFor = new Map<number, string>();
  for (let s = 0; s < 65_536; s++) {
    const tail = HEX[s >> 12]! + HEX[(s >> 8) & 15]! + HEX[(s >> 4) & 15]! + HEX[s & 15]!;
    let x = 0;
    for (let c = 3; c >= 0; c--) x = (Math.imul(x, inv) & 0xffff) ^ tail.charCodeAt(c);
    if (!tailFor.has(x)) tailFor.set(x, tail);
  }
  let r = 1;
  const digit = () => HEX[((r = (Math.imul(r ^ (r >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) >>> 7) % 16]!;
  const ids = new Set<string>();
  while (ids.size < n) {
    let head = '';
    for (const len of [8, 4, 4, 4, 8]) {
      for (let i = 0; i < len; i++) head += digit();
      if (len === 4 || head.length === 8) head += '-';
    }
    let h = 0x811c9dc5;
    for (let c = 0; c < 32; c++) h = Math.imul(h ^ head.charCodeAt(c), P);
    const tail = tailFor.get(h & 0xffff);
    if (tail !== undefined) ids.add(head + tail);
  }
  return [...ids];
}

/** Random v4 UUIDs, as an engine makes them: the reference the crafted ids are measured against. */
const randomIds = (n: number) => Array.from({ length: n }, () => crypto.randomUUID());

describe('VmTable with ids crafted to collide in its hash', () => {
  it('VM ids chosen to collide in the unkeyed hash cost no more than random ids (a ratio in the same run, not a time)', () => {
    const n = 20_000;
    const colliding = collidingIds(n);
    expect(colliding.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id))).toBe(true);
    const os = Object.freeze({ type: 'rhel_8x64', version: '8.6' });
    const build = (ids: readonly string[]) => {
      const t0 = performance.now();
      const table = new VmTable();
      for (const id of ids) table.set(id, 'host', os);
      for (const id of ids) table.get(id);
      return { ms: performance.now() - t0, size: table.size };
    };
    build(randomIds(n)); // warm-up
    const random = build(randomIds(n));
    const crafted = build(colliding);
    expect(crafted.size).toBe(n);
    expect(crafted.ms / Math.max(1, random.ms)).toBeLessThan(10);
  });
});
