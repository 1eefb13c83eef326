/**
 * The simulated engine's data: hosts and VMs generated from a seed, with the
 * mix of OS types and guest-agent reports a real oVirt data centre shows.
 * Tests and benchmarks change it through the methods here.
 */

export interface SimHost {
  readonly id: string;
  readonly name: string;
}

export interface SimGuestOs {
  readonly family: string;
  readonly distribution: string;
  readonly fullVersion: string;
}

export interface SimVm {
  readonly id: string;
  name: string;
  /** Set while the VM runs. */
  hostId: string | undefined;
  osType: string | undefined;
  /** What the guest agent reported; undefined when no agent runs. */
  guest: SimGuestOs | undefined;
}

interface OsProfile {
  readonly type: string;
  readonly weight: number;
  readonly guests: readonly SimGuestOs[];
}

const linux = (distribution: string, ...versions: string[]) => versions.map((fullVersion) => ({ family: 'Linux', distribution, fullVersion }));
const windows = (...versions: string[]) => versions.map((fullVersion) => ({ family: 'Windows', distribution: '', fullVersion }));

/** osinfo names as the engine knows them, with the guest reports they come with. */
export const OS_PROFILES: readonly OsProfile[] = [
  { type: 'rhel_8x64', weight: 24, guests: linux('Red Hat Enterprise Linux', '8.6', '8.8', '8.10') },
  { type: 'rhel_9x64', weight: 20, guests: linux('Red Hat Enterprise Linux', '9.2', '9.4') },
  { type: 'rhel_7x64', weight: 8, guests: linux('Red Hat Enterprise Linux Server', '7.9') },
  { type: 'windows_2019x64', weight: 12, guests: windows('10.0.17763') },
  { type: 'windows_2022', weight: 10, guests: windows('10.0.20348') },
  { type: 'ubuntu_22_04', weight: 8, guests: linux('Ubuntu', '22.04') },
  { type: 'ubuntu_18_04', weight: 3, guests: linux('Ubuntu', '18.04') },
  { type: 'other_linux', weight: 8, guests: linux('Debian GNU/Linux', '11', '12') },
  { type: 'other', weight: 7, guests: [] },
];

export interface SimInventoryOptions {
  readonly hosts: number;
  readonly vms: number;
  readonly seed: number;
  /** Share of VMs that are running (have a host). */
  readonly runningShare?: number;
  /** Share of running VMs whose guest agent reports the OS. */
  readonly agentShare?: number;
}

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function seededUuid(random: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${'89ab'[Math.floor(random() * 4)]}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export class SimInventory {
  readonly hosts = new Map<string, SimHost>();
  readonly vms = new Map<string, SimVm>();
  private readonly random: () => number;

  constructor(options: SimInventoryOptions) {
    this.random = seededRandom(options.seed);
    const runningShare = options.runningShare ?? 0.7;
    const agentShare = options.agentShare ?? 0.75;
    for (let i = 0; i < options.hosts; i++) this.addHost();
    const hostIds = [...this.hosts.keys()];
    const totalWeight = OS_PROFILES.reduce((s, p) => s + p.weight, 0);
    for (let i = 0; i < options.vms; i++) {
      let pick = this.random() * totalWeight;
      const profile = OS_PROFILES.find((p) => (pick -= p.weight) < 0) ?? OS_PROFILES[0]!;
      const running = hostIds.length > 0 && this.random() < runningShare;
      const guest = running && profile.guests.length > 0 && this.random() < agentShare
        ? profile.guests[Math.floor(this.random() * profile.guests.length)]
        : undefined;
      this.addVm({
        osType: profile.type,
        hostId: running ? hostIds[Math.floor(this.random() * hostIds.length)] : undefined,
        guest,
      });
    }
  }

  addHost(name?: string): SimHost {
    const host = { id: seededUuid(this.random), name: name ?? `host-${String(this.hosts.size + 1).padStart(4, '0')}.example.com` };
    this.hosts.set(host.id, host);
    return host;
  }

  addVm(vm: Partial<Omit<SimVm, 'id'>> = {}): SimVm {
    const created: SimVm = {
      id: seededUuid(this.random),
      name: vm.name ?? `vm-${String(this.vms.size + 1).padStart(6, '0')}`,
      hostId: vm.hostId,
      osType: 'osType' in vm ? vm.osType : 'other',
      guest: vm.guest,
    };
    this.vms.set(created.id, created);
    return created;
  }

  vm(id: string): SimVm {
    const vm = this.vms.get(id);
    if (vm === undefined) throw new Error(`simulator: no VM ${id}`);
    return vm;
  }

  vmsOn(hostId: string): SimVm[] {
    return [...this.vms.values()].filter((vm) => vm.hostId === hostId);
  }
}
