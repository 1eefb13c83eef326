/** The ring the simulated engine keeps its requests in: the newest `capacity`, oldest first. */
import { describe, expect, it } from 'vitest';
import { Ring } from '../../src/simulator/request-log';

const filled = (capacity: number, count: number) => {
  const ring = new Ring<number>(capacity);
  for (let i = 0; i < count; i++) ring.add(i);
  return ring;
};

describe('Ring', () => {
  it('keeps everything until full, then the newest `capacity`, oldest first, whatever the count', () => {
    expect(filled(4, 3).items()).toEqual([0, 1, 2]);
    expect(filled(4, 4).items()).toEqual([0, 1, 2, 3]);
    for (const count of [5, 7, 8, 9, 1_001]) {
      expect(filled(4, count).items(), `after ${count}`).toEqual([count - 4, count - 3, count - 2, count - 1]);
    }
    expect(filled(1, 9).items()).toEqual([8]);
  });

  it('of capacity 0 keeps nothing', () => {
    expect(filled(0, 100).items()).toEqual([]);
  });

  it('is empty after clear() and fills again from there', () => {
    const ring = filled(3, 5);
    ring.clear();
    expect(ring.items()).toEqual([]);
    ring.add(10);
    ring.add(11);
    expect(ring.items()).toEqual([10, 11]);
    for (let i = 12; i < 20; i++) ring.add(i);
    expect(ring.items()).toEqual([17, 18, 19]);
  });

  it('hands out a copy: changing it changes nothing kept', () => {
    const ring = filled(3, 3);
    ring.items().length = 0;
    expect(ring.items()).toEqual([0, 1, 2]);
  });

  it('refuses a capacity that is not a whole number >= 0', () => {
    for (const bad of [-1, 1.5, Number.NaN, Infinity]) expect(() => new Ring(bad), String(bad)).toThrow(RangeError);
  });
});
