/**
 * The simulated engine's data: hosts and VMs generated from a seed, with the
 * mix of OS types and guest-agent reports a real oVirt data centre shows.
 * Tests and benchmarks change it through the methods here.
 */

import { EVENT, type SimEvent } from './events';
import { OS_PROFILES, type SimGuestOs } from './guest-os';
import { seededRandom, seededUuid } from './random';
import { defaultScheduling, KSM_POLICY_ID, NONE_POLICY_ID, type SimScheduling } from './scheduling';

export interface SimHost {
  readonly id: string;
  readonly name: string;
  readonly clusterId: string;
  /** The engine's host status names: "up", "maintenance", "non_responsive", ... */
  status: string;
  /** The host's own ksm.enabled: whether KSM runs there now (MOM turns it on under memory pressure). */
  ksmEnabled: boolean;
}

export interface SimCluster {
  readonly id: string;
  readonly name: string;
  ksmEnabled: boolean;
  /** Its scheduling_policy link; undefined: none. */
  schedulingPolicyId: string | undefined;
}

/** Hosts per generated cluster; every third cluster has KSM off, as some sites run memory-bound clusters without it. */
const HOSTS_PER_CLUSTER = 20;

export interface SimVm {
  readonly id: string;
  name: string;
  /** Set while the VM runs. */
  hostId: string | undefined;
  osType: string | undefined;
  /** What the guest agent reported; undefined when no agent runs. */
  guest: SimGuestOs | undefined;
}

export interface SimInventoryOptions {
  readonly hosts: number;
  readonly vms: number;
  readonly seed: number;
  /** Share of VMs that are running (have a host). */
  readonly runningShare?: number;
  /** Share of running VMs whose guest agent reports the OS. */
  readonly agentShare?: number;
}

export class SimInventory {
  readonly clusters = new Map<string, SimCluster>();
  readonly hosts = new Map<string, SimHost>();
  readonly vms = new Map<string, SimVm>();
  /** Units, policies and their weights (the clusters name their policy). */
  readonly scheduling: SimScheduling = defaultScheduling();
  /** Oldest first; only the newest `retainEvents` are kept, as an engine ages events out. */
  readonly events: SimEvent[] = [];
  retainEvents = 50_000;
  private nextEventId = 1_000;
  private byName: SimVm[] | undefined;
  /** Bumped by every change made through the methods below. */
  version = 0;
  private readonly random: () => number;

  constructor(options: SimInventoryOptions) {
    this.random = seededRandom(options.seed);
    // Clusters from a sequence of their own, so the hosts and VMs of a seed stay what they were.
    const clusterRandom = seededRandom(options.seed ^ 0x5eed_c105);
    for (let i = 0; i < Math.max(1, Math.ceil(options.hosts / HOSTS_PER_CLUSTER)); i++) {
      // The first cluster runs the policy that weighs ksm_same_os_score, the others the engine's default.
      const schedulingPolicyId = i === 0 ? KSM_POLICY_ID : NONE_POLICY_ID;
      const cluster = {
        id: seededUuid(clusterRandom),
        name: i === 0 ? 'Default' : `cluster-${i + 1}`,
        ksmEnabled: i % 3 !== 2,
        schedulingPolicyId,
      };
      this.clusters.set(cluster.id, cluster);
    }
    const runningShare = options.runningShare ?? 0.7;
    const agentShare = options.agentShare ?? 0.75;
    for (let i = 0; i < options.hosts; i++) this.addHost();
    const hostIds = [...this.hosts.keys()];
    const totalWeight = OS_PROFILES.reduce((s, p) => s + p.weight, 0);
    for (let i = 0; i < options.vms; i++) {
      let pick = this.random() * totalWeight;
      const profile = OS_PROFILES.find((p) => (pick -= p.weight) < 0) ?? OS_PROFILES[0]!;
      const running = hostIds.length > 0 && this.random() < runningShare;
      const guest =
        running && profile.guests.length > 0 && this.random() < agentShare
          ? profile.guests[Math.floor(this.random() * profile.guests.length)]
          : undefined;
      this.addVm({
        osType: profile.type,
        hostId: running ? hostIds[Math.floor(this.random() * hostIds.length)] : undefined,
        guest,
      });
    }
  }

  /** Hosts fill the clusters in order, HOSTS_PER_CLUSTER each; hosts added later go to the last one. */
  addHost(name?: string): SimHost {
    const clusters = [...this.clusters.keys()];
    const host = {
      id: seededUuid(this.random),
      name: name ?? `host-${String(this.hosts.size + 1).padStart(4, '0')}.example.com`,
      clusterId: clusters[Math.min(Math.floor(this.hosts.size / HOSTS_PER_CLUSTER), clusters.length - 1)]!,
      status: 'up',
      ksmEnabled: false,
    };
    // MOM runs KSM on a host of a KSM cluster only under memory pressure: about half of them.
    host.ksmEnabled = this.clusters.get(host.clusterId)?.ksmEnabled === true && this.hosts.size % 2 === 0;
    this.hosts.set(host.id, host);
    this.version++;
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
    this.byName = undefined;
    this.version++;
    return created;
  }

  // Changes a real engine would log as events: tests and benchmarks use these.

  startVm(id: string, hostId: string): void {
    const vm = this.vm(id);
    vm.hostId = hostId;
    this.log(EVENT.USER_STARTED_VM, `VM ${vm.name} started on Host ${this.hostName(hostId)}`, vm, hostId);
  }

  stopVm(id: string): void {
    const vm = this.vm(id);
    const from = vm.hostId;
    vm.hostId = undefined;
    vm.guest = undefined;
    this.log(EVENT.USER_STOP_VM, `VM ${vm.name} powered off`, vm, from);
  }

  suspendVm(id: string): void {
    const vm = this.vm(id);
    const from = vm.hostId;
    vm.hostId = undefined;
    this.log(EVENT.USER_SUSPEND_VM_OK, `Suspending VM ${vm.name} has been completed`, vm, from);
  }

  /** The event names the source host, as the engine's VM_MIGRATION_DONE does. */
  migrateVm(id: string, toHostId: string): void {
    const vm = this.vm(id);
    const from = vm.hostId;
    vm.hostId = toHostId;
    this.log(EVENT.VM_MIGRATION_DONE, `Migration completed (VM: ${vm.name}, Destination: ${this.hostName(toHostId)})`, vm, from);
  }

  updateVmOs(id: string, osType: string | undefined): void {
    const vm = this.vm(id);
    vm.osType = osType;
    this.log(EVENT.USER_UPDATE_VM, `VM ${vm.name} configuration was updated`, vm, vm.hostId);
  }

  removeVm(id: string): void {
    const vm = this.vm(id);
    this.vms.delete(id);
    this.byName = undefined;
    this.log(EVENT.USER_REMOVE_VM_FINISHED, `VM ${vm.name} was successfully removed`, vm, undefined);
  }

  addHostWithEvent(name?: string): SimHost {
    const host = this.addHost(name);
    this.log(EVENT.USER_ADD_VDS, `Host ${host.name} was added`, undefined, host.id);
    return host;
  }

  removeHost(id: string): void {
    const host = this.hosts.get(id);
    if (host === undefined) throw new Error(`simulator: no host ${id}`);
    for (const vm of this.vmsOn(id)) vm.hostId = undefined;
    this.log(EVENT.USER_REMOVE_VDS, `Host ${host.name} was removed`, undefined, id);
    this.hosts.delete(id);
  }

  /**
   * A host status change (maintenance, non_responsive, up). The engine logs
   * these under codes the scorer does not read, so the scorer sees them at
   * its next full refresh; here it is a change without an event.
   */
  setHostStatus(id: string, status: string): void {
    const host = this.hosts.get(id);
    if (host === undefined) throw new Error(`simulator: no host ${id}`);
    host.status = status;
    this.version++;
  }

  /** What the guest agent reports: no event, as on a real engine. */
  setGuestOs(id: string, guest: SimGuestOs | undefined): void {
    this.vm(id).guest = guest;
    this.version++;
  }

  /** A restored or recreated engine database: event ids start again from `firstId`. */
  resetEventLog(firstId = 1): void {
    this.events.length = 0;
    this.nextEventId = firstId;
  }

  newestEventId(): number {
    return this.events.at(-1)?.id ?? 0;
  }

  private hostName(id: string | undefined): string {
    return (id !== undefined && this.hosts.get(id)?.name) || '';
  }

  private log(code: number, description: string, vm: SimVm | undefined, hostId: string | undefined): void {
    this.version++;
    this.events.push({
      id: this.nextEventId++,
      code,
      time: Date.now(),
      description,
      ...(vm ? { vm: { id: vm.id, name: vm.name } } : {}),
      ...(hostId !== undefined ? { host: { id: hostId, name: this.hostName(hostId) } } : {}),
    });
    if (this.events.length > this.retainEvents) this.events.splice(0, this.events.length - this.retainEvents);
  }

  vm(id: string): SimVm {
    const vm = this.vms.get(id);
    if (vm === undefined) throw new Error(`simulator: no VM ${id}`);
    return vm;
  }

  /** VMs sorted by name, as `sortby name asc` asks; kept between requests (names never change). */
  vmsByName(): readonly SimVm[] {
    this.byName ??= [...this.vms.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return this.byName;
  }

  vmsOn(hostId: string): SimVm[] {
    return [...this.vms.values()].filter((vm) => vm.hostId === hostId);
  }
}
