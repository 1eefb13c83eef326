/**
 * HostScorerService's listing handlers: what the inventory holds (OS
 * identities, hosts, VMs), from a servable snapshot, so people and scripts
 * can find the values worth scoring. Nothing here touches the engine.
 */
import type * as grpc from '@grpc/grpc-js';
import { ScorerError } from '../errors';
import type { HostScorerServiceHandlers } from '../generated/ksmscorer/v1/HostScorerService';
import type { InventoryInfo } from '../generated/ksmscorer/v1/InventoryInfo';
import type { ScoringInventory } from '../inventory/inventory';
import type { InventorySnapshot } from '../inventory/snapshot';
import type { Logger } from '../log';
import type { DecodedRequest } from '../scoring/request';
import { inventoryMessage } from './inventory-info';
import { parseListVmsRequest, rejectMalformed } from './listing-request';
import { toServiceError } from './status';

type ListingHandlers = Pick<HostScorerServiceHandlers, 'ListOperatingSystems' | 'ListHosts' | 'ListVms'>;

export interface ListingDeps {
  readonly inventory: ScoringInventory;
  readonly logger: Logger;
}

export function createListingHandlers({ inventory, logger }: ListingDeps): ListingHandlers {
  /** A handler that parses the request, then answers from a servable snapshot, with its InventoryInfo. */
  const answer =
    <Req, Parsed, Res>(
      method: string,
      parse: (req: DecodedRequest<Req>) => Parsed,
      respond: (snapshot: InventorySnapshot, parsed: Parsed) => Res,
    ): grpc.handleUnaryCall<Req, Res & { inventory: InventoryInfo }> =>
    (call, callback) => {
      try {
        const parsed = parse(call.request as DecodedRequest<Req>); // flagMalformed in server.ts may have flagged it
        const snapshot = inventory.servableSnapshot();
        callback(null, { ...respond(snapshot, parsed), inventory: inventoryMessage(inventory.info(snapshot)) });
      } catch (err) {
        callback(toServiceError(err, logger, method));
      }
    };

  return {
    ListOperatingSystems: answer(
      'ListOperatingSystems',
      (req) => rejectMalformed(req, 'ListOperatingSystemsRequest'),
      (snapshot) => ({
        operating_systems: inventory.operatingSystems(snapshot).map((u) => ({
          os: u.os,
          vm_count: u.vmCount,
          running_vm_count: u.runningVmCount,
          host_count: u.hostCount,
        })),
      }),
    ),

    ListHosts: answer(
      'ListHosts',
      (req) => rejectMalformed(req, 'ListHostsRequest'),
      (snapshot) => ({
        hosts: inventory.hosts(snapshot).map((h) => ({
          id: h.id,
          name: h.name,
          cluster_id: h.clusterId ?? '',
          cluster_name: h.clusterName ?? '',
          status: h.status,
          vm_count: h.vmCount,
          ksm_enabled: h.ksmEnabled,
          host_ksm_enabled: h.hostKsmEnabled === true,
        })),
      }),
    ),

    ListVms: answer('ListVms', parseListVmsRequest, (snapshot, { hostId, max }) => {
      const listed = inventory.vms(snapshot, hostId, max);
      if (listed === undefined) throw new ScorerError('not_found', `host_id: the inventory has no host ${hostId}`);
      return { vms: listed.vms.map((vm) => ({ id: vm.id, host_id: vm.hostId ?? '', os: vm.os })), total_count: listed.total };
    }),
  };
}
