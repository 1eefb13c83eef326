/**
 * Loads the contract at run time with the same options the generated types
 * were made with (see "gen" in package.json), so the types match the objects.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { ProtoGrpcType } from '../generated/scorer';

export const SCORER_SERVICE_NAME = 'ksmscorer.v1.HostScorerService';
export const SCORER_PROTO = 'ksmscorer/v1/scorer.proto';
/** proto/ of the package, found upward from this file (dist/, build/ or src/). */
export const PROTO_ROOT = findProtoRoot(__dirname);

function findProtoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, SCORER_PROTO))) return candidate;
    if (dirname(dir) === dir) throw new Error(`proto/${SCORER_PROTO} not found above ${from}`);
  }
}
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

/** The engine status service (src/engine-view/service.ts), on the same port. */
export const ENGINE_STATUS_PROTO = 'ksmscorer/v1/engine_status.proto';

/** The scorer, engine status and health protos together, so reflection describes them all. */
export function loadPackageDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync([SCORER_PROTO, ENGINE_STATUS_PROTO, healthProtoPath], LOADER_OPTIONS);
}

export function loadScorerProto(): ProtoGrpcType {
  return grpc.loadPackageDefinition(protoLoader.loadSync(SCORER_PROTO, LOADER_OPTIONS)) as unknown as ProtoGrpcType;
}
