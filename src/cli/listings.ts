/**
 * `ksm-scorer os`, `hosts` and `vms`: what the service's inventory holds, as
 * tables (or the answer as JSON), so a person can find the values to score.
 */
import type { ListHostsResponse__Output } from '../generated/ksmscorer/v1/ListHostsResponse';
import type { ListOperatingSystemsResponse__Output } from '../generated/ksmscorer/v1/ListOperatingSystemsResponse';
import type { ListVmsResponse__Output } from '../generated/ksmscorer/v1/ListVmsResponse';
import { CLIENT_OPTIONS, CLIENT_USAGE, parseCommand, positiveInteger, withConnection } from './command';
import { inventoryLine, json, table } from './format';

export const OS_USAGE = `  ksm-scorer os [--json] [--target HOST:PORT] [--timeout SECONDS]
      Lists every OS (type, version) the inventory's VMs have: how many VMs, how many of them
      running, on how many hosts. These are the values --os-type and --os-version take.
${CLIENT_USAGE}`;

export const HOSTS_USAGE = `  ksm-scorer hosts [--json] [--target HOST:PORT] [--timeout SECONDS]
      Lists every host: id, name, cluster, status, VMs running, and whether its cluster runs KSM.
${CLIENT_USAGE}`;

export const VMS_USAGE = `  ksm-scorer vms [--host HOST_ID] [--max N] [--json] [--target HOST:PORT] [--timeout SECONDS]
      Lists VMs (all, or those running on one host) with the OS each is scored as: ids to try
      with score --vm-id. --max: 1 to 1000, default 100.
${CLIENT_USAGE}`;

const LIST_OPTIONS = { ...CLIENT_OPTIONS, json: { type: 'boolean', default: false } } as const;

/** Runs one listing call and prints it: JSON as answered, or `format`'s lines. */
function list<Res>(
  name: string,
  values: { target?: string; timeout: string; json: boolean },
  method: string,
  request: unknown,
  format: (res: Res) => string[],
): Promise<number> {
  return withConnection(name, values, async (conn) => {
    const res = await conn.call<Res>(conn.scorer, method, request);
    process.stdout.write(values.json ? json(res) : `${format(res).join('\n')}\n`);
    return 0;
  });
}

/** An empty version shown as "-": the CLI's way to ask for it is to leave --os-version out. */
const version = (v: string) => (v === '' ? '-' : v);

export async function osCommand(args: string[]): Promise<number> {
  const parsed = parseCommand(args, LIST_OPTIONS, OS_USAGE);
  if (parsed === undefined) return 0;
  return list<ListOperatingSystemsResponse__Output>('os', parsed.values, 'ListOperatingSystems', {}, (res) => [
    ...table(
      ['TYPE', 'VERSION', 'VMS', 'RUNNING', 'HOSTS'],
      res.operating_systems.map((u) => [
        u.os!.type === '' ? '""' : u.os!.type,
        version(u.os!.version),
        String(u.vm_count),
        String(u.running_vm_count),
        String(u.host_count),
      ]),
      new Set([2, 3, 4]),
    ),
    'VERSION -: no version known (no guest agent report); score it by leaving --os-version out',
    inventoryLine(res.inventory),
  ]);
}

/** What the two KSM columns mean, under every table that shows them. */
export const KSM_COLUMNS =
  'KSM CLUSTER: the cluster lets KSM run (? when the cluster is unknown); KSM HOST: KSM runs on the host now (the engine turns it on under memory pressure)';

export async function hostsCommand(args: string[]): Promise<number> {
  const parsed = parseCommand(args, LIST_OPTIONS, HOSTS_USAGE);
  if (parsed === undefined) return 0;
  return list<ListHostsResponse__Output>('hosts', parsed.values, 'ListHosts', {}, (res) => [
    ...table(
      ['HOST', 'NAME', 'CLUSTER', 'STATUS', 'VMS', 'KSM CLUSTER', 'KSM HOST'],
      res.hosts.map((h) => [
        h.id,
        h.name,
        h.cluster_name || '?',
        h.status || '?',
        String(h.vm_count),
        h.cluster_name === '' ? '?' : h.ksm_enabled ? 'on' : 'off',
        h.host_ksm_enabled ? 'on' : 'off',
      ]),
      new Set([4]),
    ),
    KSM_COLUMNS,
    inventoryLine(res.inventory),
  ]);
}

const VMS_OPTIONS = { ...LIST_OPTIONS, host: { type: 'string' }, max: { type: 'string' } } as const;

export async function vmsCommand(args: string[]): Promise<number> {
  const parsed = parseCommand(args, VMS_OPTIONS, VMS_USAGE);
  if (parsed === undefined) return 0;
  const { values } = parsed;
  const request = { host_id: values.host ?? '', max_results: values.max === undefined ? 0 : positiveInteger('max', values.max, 1000) };
  return list<ListVmsResponse__Output>('vms', values, 'ListVms', request, (res) => [
    ...table(
      ['VM', 'HOST', 'TYPE', 'VERSION'],
      res.vms.map((vm) => [vm.id, vm.host_id || '-', vm.os!.type === '' ? '""' : vm.os!.type, version(vm.os!.version)]),
      new Set(),
    ),
    `${res.vms.length} of ${res.total_count} VMs${values.host === undefined ? '' : ` running on ${values.host}`}${res.vms.length < res.total_count ? ' (use --max, up to 1000)' : ''}; score one: ksm-scorer score --vm-id VM`,
    inventoryLine(res.inventory),
  ]);
}
