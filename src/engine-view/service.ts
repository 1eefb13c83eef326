/**
 * ksmscorer.v1.EngineStatusService (proto/ksmscorer/v1/engine_status.proto):
 * GetEngineStatus answers from the watcher's last read and the call window,
 * never by asking the engine, so it is cheap and cannot hang.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { GetEngineStatusResponse } from '../generated/ksmscorer/v1/GetEngineStatusResponse';
import type { EngineUseState } from '../generated/ksmscorer/v1/EngineUseState';
import type { Timestamp } from '../generated/google/protobuf/Timestamp';
import type { ProtoGrpcType } from '../generated/engine_status';
import { ENGINE_STATUS_PROTO, LOADER_OPTIONS } from '../contract/proto';
import type { EngineStatus } from './status';
import { WINDOW_MS } from './call-window';

export const ENGINE_STATUS_SERVICE_NAME = 'ksmscorer.v1.EngineStatusService';

export function loadEngineStatusProto(): ProtoGrpcType {
  return grpc.loadPackageDefinition(protoLoader.loadSync(ENGINE_STATUS_PROTO, LOADER_OPTIONS)) as unknown as ProtoGrpcType;
}

/**
 * The service's definition and handler, to add to the gRPC server. `status`:
 * the watcher's, or in a worker the primary's over IPC (which may fail:
 * UNAVAILABLE, with the reason).
 */
export function engineStatusService(status: () => EngineStatus | Promise<EngineStatus>): {
  definition: grpc.ServiceDefinition;
  handlers: grpc.UntypedServiceImplementation;
} {
  const definition = loadEngineStatusProto().ksmscorer.v1.EngineStatusService.service;
  const GetEngineStatus: grpc.handleUnaryCall<unknown, GetEngineStatusResponse> = (_call, callback) => {
    Promise.resolve()
      .then(status)
      .then(
        (s) => callback(null, toMessage(s)),
        (err: unknown) => callback({ code: grpc.status.UNAVAILABLE, details: `engine status: ${(err as Error).message}` }),
      );
  };
  return { definition, handlers: { GetEngineStatus } };
}

const timestamp = (ms: number | undefined): Timestamp | null =>
  ms === undefined ? null : { seconds: String(Math.floor(ms / 1000)), nanos: Math.round((ms % 1000) * 1e6) };

export function toMessage(s: EngineStatus): GetEngineStatusResponse {
  return {
    state: `ENGINE_USE_STATE_${s.state.toUpperCase()}` as EngineUseState,
    advice: [...s.advice],
    engine: {
      known: s.engine.known,
      unknown_reason: s.engine.unknownReason,
      read_time: timestamp(s.engine.readAt),
      unit_discovered: s.engine.unitDiscovered,
      unit_enabled: s.engine.unitEnabled,
      policies: s.engine.policies.map((p) => ({ id: p.id, name: p.name, factor: p.factor })),
      clusters: s.engine.clusters.map((c) => ({
        id: c.id,
        name: c.name,
        policy_id: c.policyId,
        policy_name: c.policyName,
        weighs_unit: c.weighsUnit,
      })),
    },
    calls: {
      listening: s.calls.listening,
      window_seconds: WINDOW_MS / 1000,
      counts: s.calls.counts.map((c) => ({ method: c.method, outcome: c.outcome, count: String(c.count) })),
      last_call_time: timestamp(s.calls.lastCallAt),
    },
  };
}
