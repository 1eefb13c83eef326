/**
 * The simulated engine's answers as a real engine writes them (REST API v4 JSON, see
 * shared/reference/ovirt.md): integers and booleans as strings, hrefs and links on everything,
 * `{}` for an empty list.
 */
import type { SimEvent } from './events';
import type { SimCluster, SimHost, SimVm } from './inventory';
import type { SimPolicy, SimPolicyUnit } from './scheduling';

export const API = '/ovirt-engine/api';

const VM_LINKS = [
  'affinitylabels',
  'applications',
  'backups',
  'cdroms',
  'checkpoints',
  'diskattachments',
  'graphicsconsoles',
  'hostdevices',
  'katelloerrata',
  'mediateddevices',
  'nics',
  'numanodes',
  'permissions',
  'reporteddevices',
  'sessions',
  'snapshots',
  'statistics',
  'tags',
  'watchdogs',
  'dynamicaffinitylabels',
];
const VM_ACTIONS = [
  'start',
  'stop',
  'shutdown',
  'suspend',
  'migrate',
  'cancelmigration',
  'reboot',
  'reset',
  'detach',
  'export',
  'previewsnapshot',
  'commitsnapshot',
  'undosnapshot',
  'ticket',
  'logon',
  'freezefilesystems',
];

/** The engine's list wrapper; an empty list is `{}`, as real engines send it. */
export function list(key: string, items: unknown[]): Record<string, unknown> {
  return items.length === 0 ? {} : { [key]: items };
}

export function eventJson(e: SimEvent): Record<string, unknown> {
  return {
    href: `${API}/events/${e.id}`,
    id: String(e.id),
    code: String(e.code),
    severity: 'normal',
    time: e.time,
    description: e.description,
    origin: 'oVirt',
    ...(e.vm ? { vm: { href: `${API}/vms/${e.vm.id}`, id: e.vm.id } } : {}),
    ...(e.host ? { host: { href: `${API}/hosts/${e.host.id}`, id: e.host.id } } : {}),
  };
}

/** A host as the engine writes it (exported for tests that hand-craft answers). */
export function hostJson(host: SimHost): Record<string, unknown> {
  return {
    href: `${API}/hosts/${host.id}`,
    id: host.id,
    name: host.name,
    address: host.name,
    status: host.status,
    cluster: { href: `${API}/clusters/${host.clusterId}`, id: host.clusterId },
    memory: '405874409472',
    max_scheduling_memory: '390123456512',
    cpu: { topology: { cores: '16', sockets: '2', threads: '2' } },
    os: { type: 'RHEL', version: { full_version: '8.9 - 1.el8', major: '8', minor: '9' } },
    ksm: { enabled: String(host.ksmEnabled), merge_across_nodes: 'true' },
    link: ['nics', 'statistics', 'storage', 'tags', 'permissions'].map((rel) => ({ href: `${API}/hosts/${host.id}/${rel}`, rel })),
  };
}

export function clusterJson(cluster: SimCluster): Record<string, unknown> {
  return {
    href: `${API}/clusters/${cluster.id}`,
    id: cluster.id,
    name: cluster.name,
    description: '',
    ballooning_enabled: 'true',
    cpu: { architecture: 'x86_64', type: 'Secure Intel Cascadelake Server Family' },
    ksm: { enabled: String(cluster.ksmEnabled), merge_across_nodes: 'true' },
    memory_policy: { over_commit: { percent: '100' }, transparent_hugepages: { enabled: 'true' } },
    version: { major: '4', minor: '7' },
    ...(cluster.schedulingPolicyId === undefined
      ? {}
      : { scheduling_policy: { href: `${API}/schedulingpolicies/${cluster.schedulingPolicyId}`, id: cluster.schedulingPolicyId } }),
    data_center: { href: `${API}/datacenters/00000001-0001-0001-0001-000000000311`, id: '00000001-0001-0001-0001-000000000311' },
    link: ['affinitygroups', 'glustervolumes', 'networks', 'permissions'].map((rel) => ({
      href: `${API}/clusters/${cluster.id}/${rel}`,
      rel,
    })),
  };
}

/** types/SchedulingPolicyUnit.java: type (filter | weight | load_balancing), internal, enabled; booleans as strings. */
export function unitJson(unit: SimPolicyUnit): Record<string, unknown> {
  return {
    href: `${API}/schedulingpolicyunits/${unit.id}`,
    id: unit.id,
    name: unit.name,
    description: unit.description,
    enabled: String(unit.enabled),
    internal: String(unit.internal),
    type: unit.type,
  };
}

/** types/SchedulingPolicy.java; its weights are the sub-collection /schedulingpolicies/{id}/weights. */
export function policyJson(policy: SimPolicy): Record<string, unknown> {
  const href = `${API}/schedulingpolicies/${policy.id}`;
  return {
    href,
    id: policy.id,
    name: policy.name,
    description: '',
    default_policy: String(policy.defaultPolicy),
    locked: String(policy.locked),
    properties: {},
    link: ['balances', 'filters', 'weights'].map((rel) => ({ href: `${href}/${rel}`, rel })),
  };
}

/** types/Weight.java: factor (an integer, as a string), links to the policy and the unit; the weight's id is the unit's. */
export function weightJson(policy: SimPolicy, w: { unitId: string; factor: number }): Record<string, unknown> {
  return {
    href: `${API}/schedulingpolicies/${policy.id}/weights/${w.unitId}`,
    id: w.unitId,
    factor: String(w.factor),
    scheduling_policy: { href: `${API}/schedulingpolicies/${policy.id}`, id: policy.id },
    scheduling_policy_unit: { href: `${API}/schedulingpolicyunits/${w.unitId}`, id: w.unitId },
  };
}

/** A VM as the engine writes it (exported for tests that hand-craft pages). */
export function vmJson(vm: SimVm): Record<string, unknown> {
  const href = `${API}/vms/${vm.id}`;
  const json: Record<string, unknown> = {
    href,
    id: vm.id,
    name: vm.name,
    status: vm.hostId === undefined ? 'down' : 'up',
    memory: '4294967296',
    creation_time: 1700000000000,
    cpu: { topology: { cores: '2', sockets: '1', threads: '1' } },
    os: vm.osType === undefined ? { boot: { devices: { device: ['hd'] } } } : { type: vm.osType, boot: { devices: { device: ['hd'] } } },
    cluster: { href: `${API}/clusters/00000002-0002-0002-0002-00000000017a`, id: '00000002-0002-0002-0002-00000000017a' },
    template: { href: `${API}/templates/00000000-0000-0000-0000-000000000000`, id: '00000000-0000-0000-0000-000000000000' },
    actions: { link: VM_ACTIONS.map((rel) => ({ href: `${href}/${rel}`, rel })) },
    link: VM_LINKS.map((rel) => ({ href: `${href}/${rel}`, rel })),
  };
  if (vm.hostId !== undefined) json.host = { href: `${API}/hosts/${vm.hostId}`, id: vm.hostId };
  if (vm.guest !== undefined) {
    const [major = '', minor = ''] = vm.guest.fullVersion.split('.');
    json.guest_operating_system = {
      architecture: 'x86_64',
      family: vm.guest.family,
      ...(vm.guest.distribution === '' ? {} : { distribution: vm.guest.distribution }),
      version: { full_version: vm.guest.fullVersion, major, minor },
    };
  }
  return json;
}
