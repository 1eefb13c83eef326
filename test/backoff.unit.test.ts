/** The one exponential backoff rule: the sync loop's retries and the primary's worker restarts. */
import { describe, expect, it } from 'vitest';
import { backoffMs } from '../src/backoff';

describe('backoffMs', () => {
  const rule = { baseMs: 1_000, maxMs: 30_000 };

  it('waits nothing before any failure, then the base, doubling at each failure in a row, capped', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((n) => backoffMs(n, rule))).toEqual([0, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });

  it('stays at the cap however long the streak (no overflow to Infinity or NaN)', () => {
    expect(backoffMs(10_000, rule)).toBe(30_000);
  });

  it('with jitter, draws from half to all of the exponential delay, rounded to the ms', () => {
    expect(backoffMs(3, { ...rule, random: () => 0 })).toBe(2_000);
    expect(backoffMs(3, { ...rule, random: () => 0.5 })).toBe(3_000);
    expect(backoffMs(3, { ...rule, random: () => 0.999_9 })).toBe(4_000);
    expect(backoffMs(40, { ...rule, random: () => 1 })).toBe(30_000);
  });
});
