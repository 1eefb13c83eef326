/**
 * The gRPC server: HostScorerService, grpc.health.v1.Health and server
 * reflection on one port, the transport limits, and an orderly shutdown
 * (NOT_SERVING, drain in-flight calls, force after the grace period). The
 * metrics see every call of every service.
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { HostPort } from '../config/kinds';
import type { ServerSettings } from '../config/load';
import type { Logger } from '../log';
import { decodeScoreHostsBatchRequest, decodeScoreHostsRequest, flagMalformed } from '../fast-path/decode';
import { encodeScoreHostsBatchResponse, encodeScoreHostsResponse } from '../fast-path/encode';
import { ControlFloodGuard, injectorHttp2Server } from './control-flood';
import { firstMessageTimeout } from './first-message-timeout';
import { ConnectionListener } from './listener';
import type { GrpcServerMetrics } from './grpc-metrics';
import { loadPackageDefinition, loadScorerProto, SCORER_SERVICE_NAME } from '../contract/proto';
import { createScorerHandlers, type ScorerServiceDeps } from './scorer-service';
import { addHealthService, addReflectionService } from './standard-services';

export type TransportLimits = Omit<ServerSettings, 'listen' | 'shutdownGraceMs' | 'workers'>;

export interface ScorerServerOptions extends ScorerServiceDeps {
  readonly transport: TransportLimits;
  /** Counts every call; undefined: metrics off, nothing added to the call path. */
  readonly metrics?: GrpcServerMetrics;
}

/** The grpc-js server options of the transport limits (the benchmark's limit server takes them too, to tell their cost). */
export function grpcServerOptions(t: TransportLimits, metrics?: GrpcServerMetrics): grpc.ServerOptions {
  // Options grpc-js 1.14 reads on the server side (server.js, server-interceptors.js); it has no
  // keepalive enforcement (no grpc.http2.min_ping_interval_without_data_ms on servers).
  return {
    'grpc.max_concurrent_streams': t.maxConcurrentStreams,
    'grpc.max_connection_idle_ms': t.maxConnectionIdleMs,
    'grpc.max_connection_age_ms': t.maxConnectionAgeMs,
    'grpc.max_connection_age_grace_ms': t.maxConnectionAgeGraceMs,
    'grpc.max_receive_message_length': t.maxRequestBytes,
    // The metrics first (nearest grpc-js's own call), so they see the statuses the others send.
    interceptors: [...(metrics === undefined ? [] : [metrics.interceptor]), firstMessageTimeout(t.firstMessageTimeoutMs)],
  };
}

export class ScorerServer {
  private readonly server: grpc.Server;
  private readonly listener: ConnectionListener;
  private readonly controlFlood: ControlFloodGuard | undefined;
  private readonly health = new HealthImplementation({ '': 'NOT_SERVING', [SCORER_SERVICE_NAME]: 'NOT_SERVING' });
  private readonly logger: Logger;
  private shuttingDown = false;
  /** Scoring calls whose handler has not answered yet, and who to tell when none is left. */
  private readonly inFlight = new Set<grpc.ServerUnaryCall<unknown, unknown>>();
  private idle: (() => void) | undefined;

  constructor({ metrics, ...deps }: ScorerServerOptions) {
    this.logger = deps.logger;
    const t = deps.transport;
    this.server = new grpc.Server(grpcServerOptions(t, metrics));
    // Our own TCP listener hands each connection to grpc-js, which has no handshake timeout or connection cap.
    this.listener = new ConnectionListener(this.server.createConnectionInjector(grpc.ServerCredentials.createInsecure()), t, deps.logger);
    const http2Server = injectorHttp2Server(this.server);
    if (http2Server === undefined)
      deps.logger.warn(
        'grpc-js no longer shows its http2 server: connections flooding control frames are not cut (see src/server/control-flood.ts)',
      );
    this.controlFlood = http2Server === undefined ? undefined : new ControlFloodGuard(http2Server, t.maxControlBytesPerSecond, deps.logger);
    const proto = loadScorerProto();
    const definition = proto.ksmscorer.v1.HostScorerService.service;
    // The same service with hand-written codecs for the hot messages (see codec.ts), and
    // malformed requests to the others flagged for INVALID_ARGUMENT rather than thrown (INTERNAL).
    const fast: grpc.ServiceDefinition = {
      ...Object.fromEntries(
        Object.entries(definition).map(([name, method]) => [
          name,
          { ...method, requestDeserialize: flagMalformed(method.requestDeserialize) },
        ]),
      ),
      ScoreHosts: {
        ...definition.ScoreHosts,
        requestDeserialize: decodeScoreHostsRequest,
        responseSerialize: encodeScoreHostsResponse as (value: unknown) => Buffer,
      },
      ScoreHostsBatch: {
        ...definition.ScoreHostsBatch,
        requestDeserialize: (buf: Buffer) => decodeScoreHostsBatchRequest(buf, deps.limits),
        responseSerialize: encodeScoreHostsBatchResponse as (value: unknown) => Buffer,
      },
    };
    const handlers = this.tracked(
      createScorerHandlers(deps) as unknown as Record<string, grpc.handleUnaryCall<unknown, unknown>>,
    ) as unknown as ReturnType<typeof createScorerHandlers>;
    this.server.addService(fast, metrics === undefined ? handlers : metrics.instrument(fast, handlers));
    addHealthService(this.server, this.health, ['', SCORER_SERVICE_NAME]);
    addReflectionService(this.server, loadPackageDefinition());
  }

  /** Another service on the same server and port (the engine status); its calls are drained like the others. */
  addService(definition: grpc.ServiceDefinition, handlers: grpc.UntypedServiceImplementation): void {
    this.server.addService(definition, this.tracked(handlers as Record<string, grpc.handleUnaryCall<unknown, unknown>>));
  }

  /** Listens on `at` (port 0 picks one) and returns the bound port. */
  listen(at: HostPort): Promise<number> {
    return this.listener.listen(at);
  }

  setServing(serving: boolean): void {
    if (this.shuttingDown && serving) return;
    const status: ServingStatus = serving ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', status);
    this.health.setStatus(SCORER_SERVICE_NAME, status);
  }

  /**
   * The handlers, counting the calls in flight: the drain waits for them to answer, not only for
   * grpc-js's sessions to close (on Node 24 those can close while a handler still waits on the engine).
   */
  private tracked(
    handlers: Record<string, grpc.handleUnaryCall<unknown, unknown>>,
  ): Record<string, grpc.handleUnaryCall<unknown, unknown>> {
    return Object.fromEntries(
      Object.entries(handlers).map(([name, handler]) => [
        name,
        (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
          this.inFlight.add(call);
          let done = false;
          const finish = () => {
            if (done) return;
            done = true;
            this.inFlight.delete(call);
            if (this.shuttingDown) this.closeIfIdle(call.getPeer());
            if (this.inFlight.size === 0) this.idle?.();
          };
          call.once('cancelled', finish);
          return handler(call, (err, value) => {
            // Answered first: the drain this may end must not let the process exit before the answer is on its way.
            callback(err, value);
            finish();
          });
        },
      ]),
    );
  }

  /**
   * NOT_SERVING first so balancers stop sending, then drain: GOAWAY on every connection, and each
   * connection closed as soon as it has no call in flight (at once for idle ones: a client need
   * not close its side after a GOAWAY, and grpcio's does not for seconds). After `graceMs`, cut what is left.
   */
  shutdown(graceMs: number): Promise<void> {
    this.setServing(false);
    this.shuttingDown = true;
    this.listener.close();
    this.controlFlood?.close();
    return new Promise((resolve) => {
      const force = setTimeout(() => {
        const calls = this.inFlight.size;
        if (calls > 0) this.logger.warn('grace period over, cancelling the calls still in flight', { graceMs, calls });
        else this.logger.warn('grace period over, closing the connections still open (no call in flight)', { graceMs });
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      const drained = () => {
        clearTimeout(force);
        resolve();
      };
      this.server.tryShutdown(() => {
        if (this.inFlight.size === 0) return drained();
        this.idle = drained;
      });
      const busy = new Set([...this.inFlight].map((call) => call.getPeer()));
      this.listener.closeConnections((peer) => !busy.has(peer));
    });
  }

  /** During the drain: closes the connection of `peer` (HOST:PORT, as grpc-js names it) once no call is in flight on it. */
  private closeIfIdle(peer: string): void {
    for (const call of this.inFlight) if (call.getPeer() === peer) return;
    this.listener.closeConnections((p) => p === peer);
  }
}
