/**
 * grpc.health.v1.Health and server reflection, from their grpc-node packages,
 * with the bounds those packages lack: a Watch on a service name nobody
 * serves is answered SERVICE_UNKNOWN without the name being kept (the
 * package keeps every name ever watched), and reflection answers are written
 * only as fast as the client reads them (the package ignores backpressure,
 * so a client that never reads could make the server buffer without end).
 */
import type * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import type { HealthImplementation } from 'grpc-health-check';
import type { PackageDefinition } from '@grpc/proto-loader';

type Handlers = Record<string, (...args: never[]) => unknown>;

/** Hands what `register` adds to a stand-in server to `wrap`, then to the real one. */
function addWrapped(server: grpc.Server, register: (s: grpc.Server) => void, wrap: (handlers: Handlers) => Handlers): void {
  const standIn = {
    addService: (definition: grpc.ServiceDefinition, handlers: Handlers) =>
      server.addService(definition, wrap(handlers) as grpc.UntypedServiceImplementation),
  } as unknown as grpc.Server;
  register(standIn);
}

export function addHealthService(server: grpc.Server, health: HealthImplementation, served: readonly string[]): void {
  const known = new Set(served);
  addWrapped(
    server,
    (s) => health.addToServer(s),
    (handlers) => ({
      ...handlers,
      watch: (call: grpc.ServerWritableStream<{ service: string }, { status: string }>) => {
        if (known.has(call.request.service)) return (handlers.watch as (c: typeof call) => void)(call);
        // As the protocol says: SERVICE_UNKNOWN, and the call stays open until the client ends it.
        call.write({ status: 'SERVICE_UNKNOWN' });
      },
    }),
  );
}

export function addReflectionService(server: grpc.Server, definition: PackageDefinition): void {
  addWrapped(
    server,
    (s) => new ReflectionService(definition).addToServer(s),
    (handlers) =>
      Object.fromEntries(
        Object.entries(handlers).map(([name, handler]) => [
          name,
          (call: grpc.ServerDuplexStream<unknown, unknown>) => {
            const write = call.write.bind(call) as (chunk: unknown) => boolean;
            // Stop reading requests while answers wait unread: HTTP/2 flow control then holds the client back.
            (call as { write: (chunk: unknown) => boolean }).write = (chunk) => {
              const ok = write(chunk);
              if (!ok && !call.isPaused()) {
                call.pause();
                call.once('drain', () => call.resume());
              }
              return ok;
            };
            return (handler as (c: typeof call) => unknown)(call);
          },
        ]),
      ),
  );
}
