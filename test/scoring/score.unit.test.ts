import { describe, expect, it } from 'vitest';
import { HostOsCounts } from '../../src/scoring/os-counts';
import { SnapshotBuilder } from '../../src/inventory/snapshot';
import { CallView } from '../../src/inventory/call-view';
import type { EngineHost, EngineVm, OsIdentity } from '../../src/ovirt/model';
import { type Candidate, scoreCandidates, scoreHost } from '../../src/scoring/score';
import { seededRandom, seededUuid } from '../../src/simulator/random';

const os = (type: string, version = ''): OsIdentity => ({ type, version });
const R8 = os('rhel_8x64', 'RHEL 8.6');
const host = (oses: OsIdentity[], containsScoredVm = false): Candidate => ({
  hostId: 'h',
  counts: HostOsCounts.of(oses),
  containsScoredVm,
});

describe('scoreHost', () => {
  const cases: { name: string; candidate: Candidate; scored: OsIdentity; want: [number, number, number, number] }[] = [
    // [score, vm_count, same_type, same_version]
    { name: 'no VMs scores 0', candidate: host([]), scored: R8, want: [0, 0, 0, 0] },
    // 100 / 1 = 100
    { name: 'one same-OS VM', candidate: host([R8]), scored: R8, want: [100, 1, 1, 1] },
    // (100 + 20) / 2 = 60
    { name: 'same version and same type', candidate: host([R8, os('rhel_8x64', 'RHEL 8.8')]), scored: R8, want: [60, 2, 2, 1] },
    // (20 + 0 + 0) / 3 = 6.666...
    {
      name: 'mean is a double, not rounded',
      candidate: host([os('rhel_8x64'), os('windows_2022'), os('other')]),
      scored: R8,
      want: [20 / 3, 3, 1, 0],
    },
    // (0 + 0) / 2 = 0
    { name: 'other types only', candidate: host([os('windows_2022'), os('other')]), scored: R8, want: [0, 2, 0, 0] },
    // type "" equals type "": (100 + 100) / 2 = 100
    { name: 'VMs with no OS type match an empty scored type', candidate: host([os(''), os('')]), scored: os(''), want: [100, 2, 2, 2] },
    // the scored VM leaves its host: (100 + 20) / 2 = 60, not (100 + 100 + 20) / 3
    { name: 'scored VM excluded on its own host', candidate: host([R8, R8, os('rhel_8x64', 'x')], true), scored: R8, want: [60, 2, 2, 1] },
    // alone on its host: 0 VMs left, score 0
    { name: 'scored VM alone on its host', candidate: host([R8], true), scored: R8, want: [0, 0, 0, 0] },
  ];
  it.each(cases)('$name', ({ candidate, scored, want }) => {
    const s = scoreHost(candidate, scored);
    expect([s.score, s.vm_count, s.same_type_count, s.same_version_count]).toEqual(want);
    expect(s.found).toBe(true);
  });

  it('unknown host: score 0, found false', () => {
    expect(scoreHost({ hostId: 'x', counts: undefined, containsScoredVm: false }, R8)).toEqual({
      host_id: 'x',
      score: 0,
      vm_count: 0,
      same_type_count: 0,
      same_version_count: 0,
      found: false,
    });
  });

  it('ranks by score descending, then host id ascending; keeps caller order otherwise', () => {
    const c = (hostId: string, oses: OsIdentity[]): Candidate => ({ hostId, counts: HostOsCounts.of(oses), containsScoredVm: false });
    const cands = [c('b', []), c('c', [R8]), c('a', []), c('d', [os('rhel_8x64')])];
    expect(scoreCandidates(cands, R8, true).map((s) => s.host_id)).toEqual(['c', 'd', 'a', 'b']);
    expect(scoreCandidates(cands, R8, false).map((s) => s.host_id)).toEqual(['b', 'c', 'a', 'd']);
  });
});

/**
 * The seed's algorithm (ksm_same_os_score.score_host), transcribed: walk the
 * host's VMs, 100 for same type and version, 20 for same type, divide by the
 * number of VMs; plus this service's documented changes: true division, and
 * the scored VM does not count on its own host.
 */
function oracle(vm: { id?: string; os: OsIdentity }, hostId: string, allVms: readonly EngineVm[]): number {
  const hostVms = allVms.filter((v) => v.hostId === hostId && v.id !== vm.id);
  if (hostVms.length === 0) return 0;
  let score = 0;
  for (const hostVm of hostVms) {
    if (vm.os.type === hostVm.os.type) score += vm.os.version === hostVm.os.version ? 100 : 20;
  }
  return score / hostVms.length;
}

describe('scoring against the seed oracle on random inventories', () => {
  it('matches for every host, by VM and by OS, over 200 inventories', () => {
    const types = ['rhel_8x64', 'rhel_9x64', 'windows_2022', 'other', ''];
    const versions = ['', 'RHEL 8.6', 'RHEL 8.8', '10.0.20348'];
    let compared = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const random = seededRandom(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
      const hosts: EngineHost[] = Array.from({ length: 1 + Math.floor(random() * 12) }, (_, i) => ({
        id: seededUuid(random),
        name: `h${i}`,
        clusterId: undefined,
        status: 'up',
      }));
      const vms: EngineVm[] = Array.from({ length: Math.floor(random() * 80) }, () => ({
        id: seededUuid(random),
        hostId: random() < 0.8 ? pick(hosts).id : undefined,
        os: os(pick(types), pick(versions)),
      }));
      const builder = new SnapshotBuilder(hosts, []);
      builder.addVms(vms);
      const snapshot = builder.build({ generation: 1, refreshedAt: 0 });
      const view = new CallView(snapshot, undefined, undefined);
      const hostIds = hosts.map((h) => h.id);

      for (const vm of vms) {
        const scores = scoreCandidates(view.candidates(hostIds, vm.id), vm.os, false);
        scores.forEach((s, i) => {
          expect(s.score).toBe(oracle(vm, hostIds[i]!, vms));
          compared++;
        });
      }
      const byOs = os(pick(types), pick(versions));
      const ranked = scoreCandidates(view.candidates(undefined, undefined), byOs, true);
      for (const s of ranked) expect(s.score).toBe(oracle({ os: byOs }, s.host_id, vms));
      for (let i = 1; i < ranked.length; i++) {
        const [a, b] = [ranked[i - 1]!, ranked[i]!];
        expect(a.score > b.score || (a.score === b.score && a.host_id < b.host_id)).toBe(true);
      }
    }
    expect(compared).toBeGreaterThan(10_000);
  });
});
