/**
 * gRPC server metrics under go-grpc-prometheus's names and labels, so the
 * usual gRPC dashboards and alerts apply. A server interceptor counts every
 * call of every service (health and reflection too); the scorer's own unary
 * methods, the hot path, are counted in a wrapper around their handlers
 * instead, which costs less than grpc-js's interceptor layer. grpc_code is
 * the status NAME as grpc-js spells it (OK, INVALID_ARGUMENT, ...).
 */
import * as grpc from '@grpc/grpc-js';
import type { CounterSeries, HistogramSeries, HotCounter, HotHistogram } from '../metrics/hot';
import type { Metrics } from '../metrics/metrics';

/** 100 µs to 10 s: a ScoreHosts answer takes tens of µs, an on-demand read seconds. */
export const HANDLING_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type MethodLabel = 'grpc_type' | 'grpc_service' | 'grpc_method';
type MethodShape = Pick<grpc.MethodDefinition<unknown, unknown>, 'path' | 'requestStream' | 'responseStream'>;
type UnaryHandler = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

/** One method's series, resolved once: a call costs a few additions. */
class MethodSeries {
  readonly started: CounterSeries;
  private readonly seconds: HistogramSeries;
  /** By status code, resolved at its first use. */
  private readonly handled: (CounterSeries | undefined)[] = [];
  private readonly labels: Record<MethodLabel, string>;

  constructor(
    method: MethodShape,
    started: HotCounter<MethodLabel>,
    private readonly handledCounter: HotCounter<MethodLabel | 'grpc_code'>,
    seconds: HotHistogram<MethodLabel>,
  ) {
    const [, service = '', name = ''] = /^\/([^/]*)\/([^/]*)$/.exec(method.path) ?? [];
    const type = method.requestStream
      ? method.responseStream
        ? 'bidi_stream'
        : 'client_stream'
      : method.responseStream
        ? 'server_stream'
        : 'unary';
    this.labels = { grpc_type: type, grpc_service: service, grpc_method: name };
    this.started = started.labels(this.labels);
    this.seconds = seconds.labels(this.labels);
  }

  finished(code: number, t0: number): void {
    const counter = (this.handled[code] ??= this.handledCounter.labels({ ...this.labels, grpc_code: grpc.status[code] ?? 'UNKNOWN' }));
    counter.inc();
    this.seconds.observe((performance.now() - t0) / 1000);
  }
}

export class GrpcServerMetrics {
  private readonly started: HotCounter<MethodLabel>;
  private readonly handled: HotCounter<MethodLabel | 'grpc_code'>;
  private readonly seconds: HotHistogram<MethodLabel>;
  /** Bounded: only registered methods reach interceptors and wrappers. */
  private readonly byPath = new Map<string, MethodSeries>();
  /** Paths whose handlers count their own calls: the interceptor leaves them alone. */
  private readonly wrapped = new Set<string>();

  constructor(metrics: Metrics) {
    const labels: MethodLabel[] = ['grpc_type', 'grpc_service', 'grpc_method'];
    this.started = metrics.hotCounter('grpc_server_started_total', 'Total number of RPCs started on the server.', labels);
    this.handled = metrics.hotCounter(
      'grpc_server_handled_total',
      'Total number of RPCs completed on the server, regardless of success or failure.',
      [...labels, 'grpc_code'],
    );
    this.seconds = metrics.hotHistogram(
      'grpc_server_handling_seconds',
      'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
      labels,
      HANDLING_BUCKETS,
    );
  }

  private seriesOf(method: MethodShape): MethodSeries {
    let series = this.byPath.get(method.path);
    if (series === undefined) {
      series = new MethodSeries(method, this.started, this.handled, this.seconds);
      this.byPath.set(method.path, series);
    }
    return series;
  }

  /** For grpc.Server's `interceptors`: counts every call except those of `instrument`ed handlers. */
  readonly interceptor: grpc.ServerInterceptor = (method, call) => {
    // grpc-js chains what interceptors return; handing back the call it gave adds no layer.
    if (this.wrapped.has(method.path)) return call as grpc.ServerInterceptingCall;
    const series = this.seriesOf(method);
    const t0 = performance.now();
    let done = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      series.finished(code, t0);
    };
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        series.started.inc();
        // Also called after every status; it counts only calls that ended without one:
        // the client went away, or grpc-js answered the deadline itself.
        next({ onCancel: () => finish(deadlinePassed(call.getDeadline()) ? grpc.status.DEADLINE_EXCEEDED : grpc.status.CANCELLED) });
      },
      sendStatus(status, next) {
        finish(status.code);
        next(status);
      },
    });
  };

  /**
   * `handlers` with each unary method counting its own calls, by the status
   * its callback answers, or DEADLINE_EXCEEDED once the deadline has passed
   * (grpc-js then answers that itself). A handler of this service always
   * answers, at the latest when the call's deadline or cancellation aborts
   * what it waits for.
   */
  instrument<H extends object>(definition: grpc.ServiceDefinition, handlers: H): H {
    const out = { ...handlers } as Record<string, unknown>;
    for (const [name, method] of Object.entries(definition)) {
      const handler = out[name];
      if (method.requestStream || method.responseStream || typeof handler !== 'function') continue;
      const series = this.seriesOf(method);
      this.wrapped.add(method.path);
      out[name] = ((call, callback) => {
        series.started.inc();
        const t0 = performance.now();
        (handler as UnaryHandler)(call, (err, value, trailer, flags) => {
          // Past the deadline grpc-js has answered DEADLINE_EXCEEDED itself, whatever comes now.
          const code = deadlinePassed(call.getDeadline())
            ? grpc.status.DEADLINE_EXCEEDED
            : err == null
              ? grpc.status.OK
              : (err.code ?? grpc.status.UNKNOWN);
          series.finished(code, t0);
          callback(err, value, trailer, flags);
        });
      }) satisfies UnaryHandler;
    }
    return out as H;
  }
}

function deadlinePassed(deadline: grpc.Deadline): boolean {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) && Date.now() >= at;
}
