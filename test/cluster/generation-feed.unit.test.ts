/** The primary's generation feed: what each worker is sent, and when, without forking any. */
import type { Worker } from 'node:cluster';
import { describe, expect, it } from 'vitest';
import { GenerationFeed } from '../../src/cluster/generation-feed';
import type { ToWorker } from '../../src/cluster/messages';
import { SnapshotBuilder } from '../../src/inventory/snapshot';

const H1 = '10000000-0000-4000-8000-000000000001';
const V1 = '20000000-0000-4000-8000-000000000001';
const snapshot = (generation: number) => {
  const builder = new SnapshotBuilder([{ id: H1, name: 'h1', clusterId: undefined, status: 'up' }], [], undefined);
  builder.addVms([{ id: V1, hostId: H1, os: { type: 'rhel_8x64', version: '' } }]);
  return builder.build({ generation, refreshedAt: 1_000 * generation });
};

const setup = () => {
  const sent = new Map<string, ToWorker[]>();
  const worker = (name: string) => (sent.set(name, []), { name } as unknown as Worker);
  let clock = 0;
  const feed = new GenerationFeed(
    (w, message) => sent.get((w as unknown as { name: string }).name)!.push(message),
    () => clock,
  );
  return { feed, worker, sent, tick: (ms: number) => (clock += ms) };
};

describe('GenerationFeed', () => {
  it('before any load, a worker that says hello is welcomed with no generation and why nothing has loaded', () => {
    const { feed, worker, sent } = setup();
    feed.syncFailed('engine unreachable');
    const w = worker('w1');
    feed.welcome(w);
    expect(sent.get('w1')).toEqual([{ ksm: 'welcome', generation: undefined, loadFailure: 'engine unreachable' }]);
    // It follows now: the next failure reaches it.
    feed.syncFailed('still unreachable');
    expect(sent.get('w1')!.at(-1)).toEqual({ ksm: 'sync-failed', reason: 'still unreachable' });
  });

  it('sends each generation to the workers that follow, and only to them', () => {
    const { feed, worker, sent } = setup();
    const following = worker('following');
    worker('silent'); // has not said hello
    feed.welcome(following);
    feed.publish(snapshot(1), 0, { kind: 'full' });
    feed.publish(snapshot(1), 0, { kind: 'refreshed' });
    expect(
      sent
        .get('following')!
        .slice(1)
        .map((m) => (m.ksm === 'generation' ? m.generation.kind : m.ksm)),
    ).toEqual(['full', 'refreshed']);
    expect(sent.get('silent')).toEqual([]);
    feed.unfollow(following);
    feed.publish(snapshot(2), 0, { kind: 'full' });
    expect(sent.get('following')).toHaveLength(3);
  });

  it('welcomes a worker that starts later with the whole current generation, aged on the monotonic clock since it was read; no load failure once loaded', () => {
    const { feed, worker, sent, tick } = setup();
    feed.syncFailed('engine unreachable');
    feed.publish(snapshot(3), 250, { kind: 'refreshed' });
    tick(4_000);
    feed.welcome(worker('late'));
    const [welcome] = sent.get('late')!;
    if (welcome?.ksm !== 'welcome') throw new Error('expected a welcome');
    expect(welcome.loadFailure).toBeUndefined();
    expect(welcome.generation).toMatchObject({ kind: 'full', snapshot: { generation: 3 }, ageMs: 4_250 });
  });
});
