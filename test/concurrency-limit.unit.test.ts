/** The one concurrency limiter (on-demand reads, the primary's reads for its workers, an events poll's re-reads). */
import { describe, expect, it } from 'vitest';
import { ConcurrencyLimit } from '../src/concurrency-limit';
import { ScorerError } from '../src/errors';

/** A task that runs until released, noting when it started. */
const gate = (started: string[], name: string) => {
  let release!: () => void;
  const done = new Promise<void>((resolve) => (release = resolve));
  return { task: async () => (started.push(name), await done, name), release };
};
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('ConcurrencyLimit', () => {
  it('runs at most `limit` tasks at once; the others start in order as slots free', async () => {
    const limit = new ConcurrencyLimit(2);
    const started: string[] = [];
    const tasks = ['a', 'b', 'c', 'd'].map((name) => gate(started, name));
    const runs = tasks.map((t) => limit.run(t.task, new AbortController().signal));
    await settle();
    expect(started).toEqual(['a', 'b']);
    tasks[1]!.release();
    await settle();
    expect(started).toEqual(['a', 'b', 'c']);
    tasks[0]!.release();
    await settle();
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    for (const t of tasks) t.release();
    expect(await Promise.all(runs)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('a waiting task whose signal fires leaves the queue with its reason and never runs; a failed task frees its slot', async () => {
    const limit = new ConcurrencyLimit(1);
    const started: string[] = [];
    const first = gate(started, 'first');
    const running = limit.run(first.task, new AbortController().signal);
    const controller = new AbortController();
    const leaving = limit.run(() => {
      started.push('leaving');
      return Promise.resolve();
    }, controller.signal);
    const next = gate(started, 'next');
    const waiting = limit.run(next.task, new AbortController().signal);
    controller.abort(new ScorerError('cancelled', 'the caller went away'));
    await expect(leaving).rejects.toMatchObject({ code: 'cancelled', message: 'the caller went away' });
    first.release();
    await running;
    await settle();
    expect(started).toEqual(['first', 'next']);
    next.release();
    await waiting;
    await expect(limit.run(() => Promise.reject(new Error('boom')), new AbortController().signal)).rejects.toThrow('boom');
    await expect(limit.run(() => Promise.resolve('after'), new AbortController().signal)).resolves.toBe('after');
  });

  it('a signal already aborted is refused at once when no slot is free', async () => {
    const limit = new ConcurrencyLimit(1);
    const busy = gate([], 'busy');
    const running = limit.run(busy.task, new AbortController().signal);
    await expect(limit.run(() => Promise.resolve('x'), AbortSignal.abort(new ScorerError('cancelled', 'gone')))).rejects.toMatchObject({
      code: 'cancelled',
    });
    busy.release();
    await running;
  });
});
