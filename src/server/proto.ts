/**
 * Loads the contract at run time with the same options the generated types
 * were made with (see "gen" in package.json), so the types match the objects.
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { ProtoGrpcType } from '../generated/scorer';

export const SCORER_SERVICE_NAME = 'ksmscorer.v1.HostScorerService';
export const PROTO_ROOT = join(__dirname, '..', '..', 'proto');
export const SCORER_PROTO = 'ksmscorer/v1/scorer.proto';

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

/** The scorer and health protos together, so reflection describes both. */
export function loadPackageDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync([SCORER_PROTO, healthProtoPath], LOADER_OPTIONS);
}

export function loadScorerProto(): ProtoGrpcType {
  return grpc.loadPackageDefinition(protoLoader.loadSync(SCORER_PROTO, LOADER_OPTIONS)) as unknown as ProtoGrpcType;
}
