/** The scoring service: parse -> snapshot -> view -> score, the call's needs and its engine-wait signal. */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ScorerError } from '../../src/errors';
import { CallView } from '../../src/inventory/call-view';
import { type InventorySnapshot, SnapshotBuilder } from '../../src/inventory/snapshot';
import { scoreCandidates } from '../../src/scoring/score';
import { callSignal, needsOf, scoreVmOnHosts, servableSnapshot } from '../../src/scoring/service';
import type { CallNeeds, ServedSnapshots } from '../../src/scoring/view';

const H1 = '11111111-1111-4111-8111-111111111111';
const H2 = '22222222-2222-4222-8222-222222222222';
const VM = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const OTHER = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
const UNKNOWN = 'cccccccc-cccc-4ccc-8ccc-cccccccccccc';
const rhel = { type: 'rhel_9x64', version: '9.2' };
const limits = { maxHostsPerRequest: 3 };

function snapshot(): InventorySnapshot {
  const builder = new SnapshotBuilder(
    [H1, H2].map((id, i) => ({ id, name: `h${i}`, clusterId: undefined, status: 'up' })),
    [],
  );
  builder.addVms([
    { id: VM, hostId: H1, os: rhel },
    { id: OTHER, hostId: H1, os: rhel },
  ]);
  return builder.build({ generation: 1, refreshedAt: 0 });
}

/** Served snapshots over one snapshot; remembers what each call said it needs. */
class OneSnapshot implements ServedSnapshots<InventorySnapshot> {
  readonly needs: CallNeeds[] = [];
  ready = true;
  constructor(private readonly snapshot: InventorySnapshot) {}
  servableSnapshot(): InventorySnapshot {
    if (!this.ready) throw new ScorerError('not_ready', 'not loaded');
    return this.snapshot;
  }
  withView<T>(s: InventorySnapshot, needs: CallNeeds, _open: unknown, use: (view: CallView) => T): T {
    this.needs.push(needs);
    return use(new CallView(s, undefined, undefined));
  }
}

describe('servableSnapshot', () => {
  it('tells a bad request about itself before an inventory that is not ready, and a good one that it is not ready', () => {
    const inventory = new OneSnapshot(snapshot());
    inventory.ready = false;
    expect(() => servableSnapshot(inventory, limits, { vm: 'vm_id', vm_id: 'nope', host_ids: [] })).toThrow(
      expect.objectContaining({ code: 'invalid_argument' }),
    );
    expect(() => servableSnapshot(inventory, limits, { vm: 'vm_id', vm_id: VM, host_ids: [] })).toThrow(
      expect.objectContaining({ code: 'not_ready' }),
    );
    expect(() => servableSnapshot(inventory, limits)).toThrow(expect.objectContaining({ code: 'not_ready' }));
    inventory.ready = true;
    expect(servableSnapshot(inventory, limits, { vm: 'vm_id', vm_id: 'nope', host_ids: [] })).toBe(inventory.servableSnapshot());
  });
});

describe('scoreVmOnHosts', () => {
  it('scores the named hosts in order, the VM not counted on its own host, and names what it read', async () => {
    const s = snapshot();
    const inventory = new OneSnapshot(s);
    const scores = await scoreVmOnHosts({ inventory, limits }, VM.toUpperCase(), [H2, H1], new AbortController().signal);
    // H1 holds VM and OTHER: without VM, one same-version VM, 100; H2 holds none.
    expect(scores).toEqual(scoreCandidates(new CallView(s, undefined, undefined).candidates([H2, H1], VM), rhel, false));
    expect(scores).toMatchObject([
      { host_id: H2, score: 0, vm_count: 0 },
      { host_id: H1, score: 100, vm_count: 1 },
    ]);
    expect(inventory.needs).toEqual([{ hostIds: [H2, H1], vmIds: [VM] }]);
  });

  it('answers a VM the engine does not have as a result, and a bad host id or too many as invalid_argument', async () => {
    const inventory = new OneSnapshot(snapshot());
    const signal = new AbortController().signal;
    expect(await scoreVmOnHosts({ inventory, limits }, UNKNOWN, [H1], signal)).toEqual({
      notFound: `the oVirt engine has no VM ${UNKNOWN}`,
    });
    await expect(scoreVmOnHosts({ inventory, limits }, VM, [H1, 'x'], signal)).rejects.toMatchObject({
      code: 'invalid_argument',
      message: expect.stringContaining('host_ids[1]'),
    });
    await expect(scoreVmOnHosts({ inventory, limits }, VM, [H1, H2, UNKNOWN, OTHER], signal)).rejects.toMatchObject({
      code: 'invalid_argument',
      message: expect.stringContaining('host_ids'),
    });
  });
});

describe('needsOf', () => {
  it('reads a run of items naming the same hosts once, and every VM', () => {
    const shared = [H1, H2];
    const needs = needsOf([
      { kind: 'vm', vmId: VM, otherIds: shared },
      { kind: 'vm', vmId: OTHER, otherIds: shared },
      { kind: 'os', os: rhel, otherIds: [UNKNOWN] },
    ]);
    expect(needs).toEqual({ hostIds: [H1, H2, UNKNOWN], vmIds: [VM, OTHER] });
  });
});

describe('callSignal', () => {
  const call = (deadline: Date | number) => Object.assign(new EventEmitter(), { getDeadline: () => deadline });

  it('fires deadline_exceeded at the deadline', async () => {
    const c = call(Date.now() + 20);
    const opened = callSignal(c);
    await new Promise((resolve) => opened.signal.addEventListener('abort', resolve));
    expect(opened.signal.reason).toMatchObject({ code: 'deadline_exceeded' });
    opened.dispose();
  });

  it('fires cancelled when the client cancels well before its deadline, and stops listening once disposed', () => {
    const c = call(Infinity);
    const opened = callSignal(c);
    expect(c.listenerCount('cancelled')).toBe(1);
    c.emit('cancelled');
    expect(opened.signal.reason).toMatchObject({ code: 'cancelled' });
    opened.dispose();
    expect(c.listenerCount('cancelled')).toBe(0);
  });

  it('takes a cancel at the deadline for the deadline (a client cancels when its deadline passes)', () => {
    const c = call(new Date(Date.now() + 10));
    const opened = callSignal(c);
    c.emit('cancelled');
    expect(opened.signal.reason).toMatchObject({ code: 'deadline_exceeded' });
    opened.dispose();
  });
});
