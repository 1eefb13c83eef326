/** The one IPC request/answer helper: ids, the pending calls, timeouts and cancellation. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { IpcCalls } from '../../src/cluster/ipc-call';
import { ScorerError } from '../../src/errors';

afterEach(() => {
  vi.useRealTimers();
});

describe('IpcCalls', () => {
  it('gives each call its own id and settles each with the answer carrying it, in any order', async () => {
    const calls = new IpcCalls<string>();
    const sent: number[] = [];
    const a = calls.call((id) => sent.push(id));
    const b = calls.call((id) => sent.push(id));
    expect(new Set(sent).size).toBe(2);
    calls.answer(sent[1]!, 'second');
    calls.answer(sent[0]!, 'first');
    await expect(a).resolves.toBe('first');
    await expect(b).resolves.toBe('second');
  });

  it('fails a call the other side failed, and drops an answer to a call that has ended', async () => {
    const calls = new IpcCalls<string>();
    let id = 0;
    const call = calls.call((i) => (id = i));
    calls.fail(id, new ScorerError('engine_unreachable', 'down'));
    await expect(call).rejects.toMatchObject({ code: 'engine_unreachable' });
    expect(() => calls.answer(id, 'late')).not.toThrow();
  });

  it('times out with the error the caller names; a late answer changes nothing', async () => {
    vi.useFakeTimers();
    const calls = new IpcCalls<string>();
    let id = 0;
    const call = calls.call((i) => (id = i), { timeout: { ms: 1_000, error: () => new Error('no answer within 1000 ms') } });
    // The assertion holds the call before the timer fires: its rejection is never unhandled.
    await Promise.all([expect(call).rejects.toThrow('no answer within 1000 ms'), vi.advanceTimersByTimeAsync(1_000)]);
    calls.answer(id, 'late');
  });

  it('an answer in time clears the timer', async () => {
    vi.useFakeTimers();
    const calls = new IpcCalls<string>();
    let id = 0;
    const call = calls.call((i) => (id = i), { timeout: { ms: 1_000, error: () => new Error('timeout') } });
    calls.answer(id, 'ok');
    await expect(call).resolves.toBe('ok');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('the caller going away fails the call with its reason and tells the other side which call to stop', async () => {
    const calls = new IpcCalls<string>();
    const controller = new AbortController();
    let sentId = 0;
    const cancelled: number[] = [];
    const call = calls.call((i) => (sentId = i), { signal: controller.signal, onCancel: (i) => cancelled.push(i) });
    controller.abort(new ScorerError('cancelled', 'the caller went away'));
    await expect(call).rejects.toMatchObject({ code: 'cancelled', message: 'the caller went away' });
    expect(cancelled).toEqual([sentId]);
  });

  it('a signal already aborted sends nothing', async () => {
    const calls = new IpcCalls<string>();
    let sends = 0;
    await expect(calls.call(() => sends++, { signal: AbortSignal.abort(new ScorerError('cancelled', 'gone')) })).rejects.toMatchObject({
      code: 'cancelled',
    });
    expect(sends).toBe(0);
  });

  it('failAll fails every call still waiting (the process is stopping)', async () => {
    const calls = new IpcCalls<string>();
    const all = [calls.call(() => undefined), calls.call(() => undefined)];
    calls.failAll(new ScorerError('cancelled', 'worker stopped'));
    for (const call of all) await expect(call).rejects.toMatchObject({ message: 'worker stopped' });
  });
});
