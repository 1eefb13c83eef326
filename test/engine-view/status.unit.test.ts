/**
 * The pieces of `engine status` on their own: the call window's hour (with a
 * clock of the test's), the sentences for many clusters and several
 * policies, and the parsing of the scheduling answers as real engines write
 * them (strings for booleans and integers, `{}` for none, one item bare) and
 * as hostile ones might (wrong types, too many items, odd ids).
 */
import { describe, expect, it } from 'vitest';
import { CallWindow } from '../../src/engine-view/call-window';
import { engineStatus, type SetupRead } from '../../src/engine-view/status';
import { MAX_UNITS, parseClusterPolicies, parsePolicies, parseUnits, parseWeights, type SchedulingSetup } from '../../src/ovirt/scheduling';

describe('CallWindow', () => {
  it('counts the last hour by method and outcome; a call 60 minutes old drops out; the last call time stays', () => {
    let now = Date.UTC(2026, 0, 1, 12, 0, 30);
    const w = new CallWindow(() => now);
    expect(w.lastHour()).toEqual([]);
    expect(w.lastCallAt).toBeUndefined();
    w.record('runCostFunctions', 'ok');
    w.record('runCostFunctions', 'ok');
    w.record('runCostFunctions', 'fault');
    now += 30 * 60_000;
    w.record('discover', 'ok');
    expect(w.lastHour()).toEqual([
      { method: 'discover', outcome: 'ok', count: 1 },
      { method: 'runCostFunctions', outcome: 'fault', count: 1 },
      { method: 'runCostFunctions', outcome: 'ok', count: 2 },
    ]);
    now += 30 * 60_000; // the first three are an hour old
    expect(w.lastHour()).toEqual([{ method: 'discover', outcome: 'ok', count: 1 }]);
    // A bucket reused a whole hour later starts from zero.
    w.record('runCostFunctions', 'ok');
    expect(w.lastHour()).toEqual([
      { method: 'discover', outcome: 'ok', count: 1 },
      { method: 'runCostFunctions', outcome: 'ok', count: 1 },
    ]);
    now += 3 * 60 * 60_000;
    expect(w.lastHour()).toEqual([]);
    expect(w.lastCallAt).toBe(Date.UTC(2026, 0, 1, 13, 0, 30));
  });

  it('a clock that goes back does not count a future bucket', () => {
    let now = Date.UTC(2026, 0, 1, 12, 10);
    const w = new CallWindow(() => now);
    w.record('discover', 'ok');
    now -= 5 * 60_000;
    expect(w.lastHour()).toEqual([]);
  });
});

const UNIT = 'u-ksm';
function setup(
  clusters: number,
  policies: { id: string; name: string; factor?: number }[],
  policyOf: (i: number) => string | undefined,
): SchedulingSetup {
  return {
    units: [{ id: UNIT, name: 'ksm_same_os_score', type: 'weight', internal: false, enabled: true }],
    policies: policies.map((p) => ({
      id: p.id,
      name: p.name,
      weights: p.factor === undefined ? [] : [{ unitId: UNIT, factor: p.factor }],
    })),
    clusters: Array.from({ length: clusters }, (_, i) => ({ id: `c${i}`, name: `c${String(i).padStart(2, '0')}`, policyId: policyOf(i) })),
  };
}
const read = (s: SchedulingSetup): SetupRead => ({ kind: 'read', setup: s, at: 0 });
const calls = { listening: true, counts: [{ method: 'runCostFunctions', outcome: 'ok', count: 5 }], lastCallAt: Date.UTC(2026, 0, 1) };

describe('engine status sentences', () => {
  it('several policies, a cluster with no policy, and more names than are listed', () => {
    const s = engineStatus(
      read(
        setup(
          14,
          [
            { id: 'p1', name: 'ksm', factor: 2 },
            { id: 'p2', name: 'ksm-heavy', factor: 5 },
            { id: 'p3', name: 'none' },
          ],
          (i) => (i < 12 ? (i % 2 ? 'p1' : 'p2') : i === 12 ? 'p3' : undefined),
        ),
      ),
      calls,
      'admin@internal',
    );
    expect(s.state).toBe('in_use');
    expect(s.advice[0]).toBe(
      'policies ksm (factor 2), ksm-heavy (factor 5) weigh the unit, clusters c00, c01, c02, c03, c04, c05, c06, c07, c08, c09 and 2 more use them; cluster c12 uses policy none, which does not; cluster c13 names no scheduling policy',
    );
    expect(s.advice[1]).toBe('the engine called 5 times in the last hour (runCostFunctions ok 5), the last at 2026-01-01T00:00:00.000Z');
  });

  it('calls that failed are pointed out; not read yet is unknown, saying so', () => {
    const s = engineStatus(
      read(setup(1, [{ id: 'p1', name: 'ksm', factor: 1 }], () => 'p1')),
      { ...calls, counts: [...calls.counts, { method: 'runCostFunctions', outcome: 'fault', count: 2 }] },
      'a',
    );
    expect(s.advice.at(-1)).toMatch(/^2 of those calls failed: the log says why/);
    const pending = engineStatus({ kind: 'pending' }, calls, 'a');
    expect(pending.state).toBe('unknown');
    expect(pending.engine.unknownReason).toMatch(/not read yet/);
  });
});

describe('parsing the scheduling answers', () => {
  it('as real engines write them: booleans and integers as strings, one item bare, none as {}', () => {
    expect(
      parseUnits({ scheduling_policy_unit: { id: 'a', name: 'ksm_same_os_score', type: 'weight', internal: 'false', enabled: 'true' } }),
    ).toEqual([{ id: 'a', name: 'ksm_same_os_score', type: 'weight', internal: false, enabled: true }]);
    expect(parseUnits({})).toEqual([]);
    expect(
      parseWeights({
        weight: [
          { factor: '3', scheduling_policy_unit: { id: 'a' } },
          { factor: 4, scheduling_policy_unit: { id: 'b' } },
          { scheduling_policy_unit: { id: 'c' } },
        ],
      }),
    ).toEqual([
      { unitId: 'a', factor: 3 },
      { unitId: 'b', factor: 4 },
      { unitId: 'c', factor: 1 },
    ]);
    expect(parsePolicies({ scheduling_policy: [{ id: 'p', name: 'none' }] })).toEqual([{ id: 'p', name: 'none' }]);
    expect(
      parseClusterPolicies({
        cluster: [
          { id: 'c', name: 'Default', scheduling_policy: { id: 'p' } },
          { id: 'd', name: 'x' },
        ],
      }),
    ).toEqual([
      { id: 'c', name: 'Default', policyId: 'p' },
      { id: 'd', name: 'x', policyId: undefined },
    ]);
  });

  it('hostile answers: a list of the wrong type or too long is an error; items without a usable id are dropped; long names are clipped', () => {
    expect(() => parseUnits('[]')).toThrow(/not a JSON object/);
    expect(() => parseUnits({ scheduling_policy_unit: 'x' })).toThrow(/not a list/);
    expect(() => parseWeights({ weight: 5 })).toThrow(/not a list/);
    expect(() => parseUnits({ scheduling_policy_unit: Array.from({ length: MAX_UNITS + 1 }, (_, i) => ({ id: String(i) })) })).toThrow(
      /more than the 1000 read/,
    );
    expect(
      parseUnits({
        scheduling_policy_unit: [
          7,
          null,
          { name: 'no id' },
          { id: { nested: true } },
          { id: 'x'.repeat(65) },
          { id: 'ok', name: 'n'.repeat(10_000) },
        ],
      }),
    ).toEqual([{ id: 'ok', name: `${'n'.repeat(256)}...`, type: '', internal: true, enabled: true }]);
    expect(
      parseWeights({ weight: [{ factor: '1e400', scheduling_policy_unit: { id: 'a' } }, { factor: '2' }, { id: 'b', factor: '3' }] }),
    ).toEqual([
      { unitId: 'a', factor: 1 },
      { unitId: 'b', factor: 3 },
    ]);
  });
});
