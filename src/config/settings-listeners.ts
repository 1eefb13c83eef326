/**
 * The settings table's rows for the listeners callers reach: the gRPC server, the engine's
 * external-scheduler protocol, /metrics, and their TLS files (settings.ts assembles the table).
 */
import { address, count, mebibytes, optionalAddress, processes, seconds, tlsFiles } from './kinds';

/** Named by other rows' texts, so declared first. */
export const TLS_RELOAD = seconds({
  env: 'KSM_SCORER_TLS_RELOAD_SECONDS',
  default: 60,
  min: 0.1,
  max: 86_400,
  description:
    'how often the TLS files are read again; a changed, valid set is used for new connections, a broken one is logged and the previous set kept',
});

/** The gRPC server. */
export const server = {
  listen: address({
    env: 'KSM_SCORER_LISTEN',
    default: { host: '0.0.0.0', port: 50051 },
    description: 'gRPC listen address (port 0 picks a free port, logged)',
  }),
  shutdownGraceMs: seconds({
    env: 'KSM_SCORER_SHUTDOWN_GRACE_SECONDS',
    default: 10,
    min: 0,
    max: 3_600,
    description: 'how long SIGTERM/SIGINT waits for in-flight calls before cancelling them',
  }),
  workers: processes({
    env: 'KSM_SCORER_WORKERS',
    default: 1,
    max: 256,
    description:
      'processes serving gRPC on the shared port; `auto`: one per CPU available. Above 1, a primary process syncs the inventory once and sends each generation to the workers; one client connection stays on one worker',
  }),
  // Transport limits (issue 7): each bounds what one client can hold; see README "Limits and hardening".
  maxConnections: count('connections', {
    env: 'KSM_SCORER_MAX_CONNECTIONS',
    default: 1_000,
    min: 1,
    max: 1_000_000,
    description:
      'most client connections open at once; one more is closed as soon as it is accepted. With workers, each worker takes this divided by their number',
  }),
  handshakeTimeoutMs: seconds({
    env: 'KSM_SCORER_HANDSHAKE_TIMEOUT_SECONDS',
    default: 10,
    min: 0.1,
    max: 3_600,
    description: 'a connection that has not sent the HTTP/2 preface within this time is closed',
  }),
  maxConnectionIdleMs: seconds({
    env: 'KSM_SCORER_MAX_CONNECTION_IDLE_SECONDS',
    default: 300,
    min: 0.1,
    max: 86_400,
    description: 'a connection without a call for this long is closed (GOAWAY; clients reconnect by themselves)',
  }),
  maxConnectionAgeMs: seconds({
    env: 'KSM_SCORER_MAX_CONNECTION_AGE_SECONDS',
    default: 1_800,
    min: 1,
    max: 7 * 86_400,
    description: 'a connection is asked to close (GOAWAY) after this long, +/-10%, so clients spread over new replicas',
  }),
  maxConnectionAgeGraceMs: seconds({
    env: 'KSM_SCORER_MAX_CONNECTION_AGE_GRACE_SECONDS',
    default: 60,
    min: 0,
    max: 86_400,
    description: 'calls still running on a connection that reached its maximum age are cut after this long',
  }),
  maxConcurrentStreams: count('streams', {
    env: 'KSM_SCORER_MAX_CONCURRENT_STREAMS',
    default: 100,
    min: 1,
    max: 100_000,
    description: 'most calls in flight on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); clients queue calls beyond it',
  }),
  firstMessageTimeoutMs: seconds({
    env: 'KSM_SCORER_FIRST_MESSAGE_TIMEOUT_SECONDS',
    default: 20,
    min: 0.1,
    max: 3_600,
    description:
      'a call whose request has not arrived within this time (all of it and the end of the stream; the first message for a streaming request) gets `DEADLINE_EXCEEDED`',
  }),
  maxControlBytesPerSecond: count('bytes/s', {
    env: 'KSM_SCORER_MAX_CONTROL_BYTES_PER_SECOND',
    default: 65_536,
    min: 1_024,
    max: 1_000_000_000,
    description:
      'control frames (WINDOW_UPDATE, PRIORITY, PING, SETTINGS, RST_STREAM) one connection may send in a second, as bytes beyond its calls (their messages, and 1 KiB each); past it the connection gets GOAWAY `ENHANCE_YOUR_CALM` and is closed. The default is about 5,000 WINDOW_UPDATE frames',
  }),
  maxRequestBytes: mebibytes({
    env: 'KSM_SCORER_MAX_REQUEST_MB',
    default: 4,
    min: 0.001,
    max: 1_024,
    description: 'largest request message, after decompression; a larger one gets `RESOURCE_EXHAUSTED`',
  }),
  ...tlsFiles('KSM_SCORER_TLS', 'gRPC', TLS_RELOAD),
} as const;

/** The oVirt engine's external-scheduler protocol (XML-RPC over HTTP, src/scheduler-proxy), off unless an address is set. */
export const ovirtProxy = {
  listen: address({
    env: 'KSM_SCORER_OVIRT_PROXY_LISTEN',
    default: undefined,
    description:
      "listen address for the oVirt engine's external scheduler (XML-RPC, the engine's `ExternalSchedulerServiceURL`; its default is `localhost:18781`); use loopback (`localhost:18781`) with ksm-scorer on the engine machine, TLS anywhere else",
  }),
  maxBodyBytes: mebibytes({
    env: 'KSM_SCORER_OVIRT_PROXY_MAX_BODY_MB',
    default: 4,
    min: 0.0625,
    max: 256,
    description:
      'largest XML-RPC request body accepted (a call naming 60 hosts is about 4 KiB); a larger one gets a fault as soon as the limit is passed, without being read whole',
  }),
  minRateBytes: count('bytes/s', {
    env: 'KSM_SCORER_OVIRT_PROXY_MIN_RATE_BYTES',
    default: 500,
    min: 1,
    max: 1_000_000_000,
    description:
      'slowest a request may arrive: headers get 10 s and the body 10 s, each plus 1 s per this many bytes received (headers at most 20 s); at the connection cap (64) the connection furthest behind it, or idle, is closed to make room. See docs/security.md',
  }),
  ...tlsFiles('KSM_SCORER_OVIRT_PROXY_TLS', 'XML-RPC', TLS_RELOAD),
} as const;

/** The TLS files of every listener (src/net/tls.ts). */
export const tls = { reloadMs: TLS_RELOAD } as const;

/** Prometheus metrics. */
export const metrics = {
  listen: optionalAddress({
    env: 'KSM_SCORER_METRICS_LISTEN',
    default: { host: '0.0.0.0', port: 9464 },
    description:
      'HTTP listen address of `/metrics` (Prometheus text, or OpenMetrics when asked); empty or `off` turns metrics off, the gRPC metrics cost included',
  }),
  ...tlsFiles('KSM_SCORER_METRICS_TLS', 'metrics', TLS_RELOAD),
} as const;
