/**
 * What a 100,000-VM snapshot costs the garbage collector, measured without a
 * network or other processes, so a noisy machine shows it too: heap bytes per
 * VM once built, and the CPU time of a full collection with one and with two
 * snapshots alive (a refresh holds the old one while it builds the new one).
 * A full mark walks every live object: this is what the refresh's worst
 * event-loop blocks are made of. Run: node --expose-gc build/test/bench/snapshot-heap.js
 */
import { SnapshotBuilder } from '../../src/inventory/snapshot';
import type { EngineHost, EngineVm } from '../../src/ovirt/model';
import { seededRandom, seededUuid } from '../../src/simulator/random';
import { fmt, table } from './lib';

const HOSTS = Number(process.env.BENCH_HEAP_HOSTS ?? 5_000);
const VMS = Number(process.env.BENCH_HEAP_VMS ?? 100_000);
const OSES = [
  'rhel_8x64',
  'rhel_9x64',
  'rhel_7x64',
  'windows_2019x64',
  'windows_2022',
  'ubuntu_22_04',
  'ubuntu_18_04',
  'other_linux',
  'other',
];

const gc = (globalThis as { gc?: () => void }).gc;

/** One refresh's worth of pages as the client hands them over: fresh objects and strings, as deserialised. */
function build(seed: number) {
  const random = seededRandom(seed);
  const hosts: EngineHost[] = Array.from({ length: HOSTS }, (_, i) => ({
    id: seededUuid(random),
    name: `host-${i}`,
    clusterId: undefined,
    status: 'up',
  }));
  const builder = new SnapshotBuilder(hosts, []);
  for (let page = 0; page < VMS / 500; page++) {
    const vms: EngineVm[] = [];
    for (let i = 0; i < 500; i++) {
      const os = OSES[Math.floor(random() * OSES.length)]!;
      vms.push({
        id: seededUuid(random),
        hostId: random() < 0.8 ? hosts[Math.floor(random() * HOSTS)]!.id : undefined,
        os: { type: `${os}`, version: random() < 0.5 ? `Linux ${Math.floor(random() * 3)}` : '' },
      });
    }
    builder.addVms(vms);
  }
  return builder.build({ generation: seed, refreshedAt: 0 });
}

/** CPU ms of one full collection, the median of 5. */
function fullGcMs(): number {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = process.cpuUsage();
    gc!();
    const d = process.cpuUsage(t0);
    times.push((d.user + d.system) / 1000);
  }
  return times.sort((a, b) => a - b)[2]!;
}

export function snapshotHeapBench(): string {
  if (gc === undefined) throw new Error('run with node --expose-gc');
  gc();
  const empty = process.memoryUsage().heapUsed;
  const emptyGc = fullGcMs();
  const one = build(1);
  gc();
  const heapOne = process.memoryUsage().heapUsed - empty;
  const oneGc = fullGcMs();
  const two = build(2);
  const twoGc = fullGcMs();
  if (one.vmCount + two.vmCount !== 2 * VMS) throw new Error('snapshots lost VMs');
  return [
    `Snapshot heap (${HOSTS} hosts / ${VMS} VMs built in this process from pages of 500; full collections: CPU ms, median of 5)`,
    table(
      ['live', 'heap MB over empty', 'heap bytes per VM', 'full GC ms'],
      [
        ['nothing', '0', '-', fmt(emptyGc)],
        ['one snapshot', fmt(heapOne / 2 ** 20, 1), fmt(heapOne / VMS, 0), fmt(oneGc)],
        ['two (during a refresh)', '-', '-', fmt(twoGc)],
      ],
    ),
  ].join('\n');
}

if (require.main === module) console.log(snapshotHeapBench());
