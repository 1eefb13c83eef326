/**
 * The gRPC server: HostScorerService, grpc.health.v1.Health and server
 * reflection on one port, and an orderly shutdown (NOT_SERVING, drain
 * in-flight calls, force after the grace period).
 */
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { Logger } from '../log';
import { decodeScoreHostsBatchRequest, decodeScoreHostsRequest, encodeScoreHostsBatchResponse, encodeScoreHostsResponse } from './codec';
import { loadPackageDefinition, loadScorerProto, SCORER_SERVICE_NAME } from './proto';
import { createScorerHandlers, type ScorerServiceDeps } from './scorer-service';

export class ScorerServer {
  private readonly server = new grpc.Server();
  private readonly health = new HealthImplementation({ '': 'NOT_SERVING', [SCORER_SERVICE_NAME]: 'NOT_SERVING' });
  private readonly logger: Logger;
  private shuttingDown = false;

  constructor(deps: ScorerServiceDeps) {
    this.logger = deps.logger;
    const proto = loadScorerProto();
    const definition = proto.ksmscorer.v1.HostScorerService.service;
    // The same service with hand-written codecs for the hot messages (see codec.ts).
    const fast: grpc.ServiceDefinition = {
      ...definition,
      ScoreHosts: {
        ...definition.ScoreHosts,
        requestDeserialize: decodeScoreHostsRequest,
        responseSerialize: encodeScoreHostsResponse as (value: unknown) => Buffer,
      },
      ScoreHostsBatch: {
        ...definition.ScoreHostsBatch,
        requestDeserialize: decodeScoreHostsBatchRequest,
        responseSerialize: encodeScoreHostsBatchResponse as (value: unknown) => Buffer,
      },
    };
    this.server.addService(fast, createScorerHandlers(deps));
    this.health.addToServer(this.server);
    new ReflectionService(loadPackageDefinition()).addToServer(this.server);
  }

  /** Binds `address` (HOST:PORT; port 0 picks one) and returns the bound port. */
  listen(address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
    });
  }

  setServing(serving: boolean): void {
    if (this.shuttingDown && serving) return;
    const status: ServingStatus = serving ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', status);
    this.health.setStatus(SCORER_SERVICE_NAME, status);
  }

  /** NOT_SERVING first so balancers stop sending, then drain; after `graceMs` cut what is left. */
  shutdown(graceMs: number): Promise<void> {
    this.setServing(false);
    this.shuttingDown = true;
    return new Promise((resolve) => {
      const force = setTimeout(() => {
        this.logger.warn('grace period over, cancelling the calls still in flight', { graceMs });
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
