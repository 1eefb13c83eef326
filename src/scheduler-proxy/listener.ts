/**
 * The HTTP side of the scheduler proxy: one POSTed methodCall per request,
 * read as it streams in under a size limit and timeouts, answered with a
 * methodResponse or a fault. Nothing a caller sends can throw out of here.
 * Calls are counted by method and outcome.
 */
import * as http from 'node:http';
import type { TlsFiles } from '../config/connection';
import type { HostPort } from '../config/kinds';
import { ScorerError } from '../errors';
import type { Logger } from '../log';
import { Metrics } from '../metrics/metrics';
import { bind } from '../net/bind';
import { ProgressGuard } from '../net/http-guard';
import { httpServer, type TlsCredentials } from '../net/tls';
import type { ProxyMethods } from './handlers';
import { DEFAULT_READER_LIMITS, MethodCallReader, type ReaderLimits } from './xmlrpc-reader';
import { FaultCode, type MethodCall, XmlRpcFault } from './xmlrpc-values';
import { writeFault, type XmlRpcOut, writeResponse } from './xmlrpc-writer';

export interface ProxyListenerOptions {
  readonly methods: ProxyMethods;
  readonly logger: Logger;
  /** Largest request body; a larger one is refused as soon as it is seen, never held whole. */
  readonly maxBodyBytes: number;
  /** How long the body may take to arrive after the headers did (a client dripping it is cut off). */
  readonly bodyTimeoutMs?: number;
  /** Bytes per second a request must keep up: each this many bytes add a second to the header and body timeouts. */
  readonly minRateBytes?: number;
  /** How long a call may wait on the oVirt engine (cache misses) once its body is read. */
  readonly callTimeoutMs?: number;
  readonly readerLimits?: ReaderLimits;
  /** Where the call metrics go; default a registry of its own. */
  readonly metrics?: Metrics;
  /** undefined: plain HTTP. */
  readonly tls?: TlsFiles | undefined;
  /** Told of every call as it is counted (method label and outcome as on /metrics): `engine status` keeps the last hour. */
  readonly onCall?: (method: string, outcome: 'ok' | 'fault') => void;
}

/** Headers get this long from their first byte, extended by the minimum rate up to HEADERS_MAX_MS. */
const HEADERS_TIMEOUT_MS = 10_000;
const HEADERS_MAX_MS = 20_000;
const BODY_TIMEOUT_MS = 10_000;
/** Apache mod_reqtimeout's default MinRate; the engine sends a call (about 4 KiB for 60 hosts) in one write. */
const MIN_RATE_BYTES = 500;
const CALL_TIMEOUT_MS = 30_000;
/** A connection with no request (new, or between calls) is closed after this long; Node's keep-alive timeout (5 s) comes first between calls. */
const IDLE_TIMEOUT_MS = 10_000;
/** The engine opens a few connections at a time; this bounds memory (each holds at most one body and its parsed call). */
const MAX_CONNECTIONS = 64;
/**
 * After refusing a body still arriving, go on reading (and dropping) it for a
 * while before closing, so the caller gets to read the fault instead of a
 * connection reset.
 */
const LINGER_MS = 2_000;

export class SchedulerProxyListener {
  private readonly server: http.Server;
  private readonly credentials: TlsCredentials | undefined;
  private readonly bodyTimeoutMs: number;
  private readonly callTimeoutMs: number;
  private readonly minRateBytes: number;
  private readonly readerLimits: ReaderLimits;
  private readonly guard: ProgressGuard;
  private readonly calls: (method: string | undefined, fault: XmlRpcFault | undefined, seconds: number) => void;

  constructor(private readonly options: ProxyListenerOptions) {
    const metrics = options.metrics ?? new Metrics();
    const count = metrics.counter('ksm_scorer_xmlrpc_calls_total', 'Scheduler proxy (XML-RPC) calls by method and outcome (ok, fault).', [
      'method',
      'outcome',
    ]);
    const time = metrics.histogram(
      'ksm_scorer_xmlrpc_call_duration_seconds',
      'Scheduler proxy call time, body read to answer sent, by method.',
      ['method'],
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    );
    this.calls = (method, fault, seconds) => {
      // Bounded: a name the methods do not know is `unknown`, a body that never named one `none`.
      const label = method === undefined ? 'none' : fault?.code === FaultCode.methodNotFound ? 'unknown' : method;
      const outcome = fault === undefined ? 'ok' : 'fault';
      count.inc({ method: label, outcome });
      options.onCall?.(label, outcome);
      time.observe({ method: label }, seconds);
    };
    this.bodyTimeoutMs = options.bodyTimeoutMs ?? BODY_TIMEOUT_MS;
    this.callTimeoutMs = options.callTimeoutMs ?? CALL_TIMEOUT_MS;
    this.minRateBytes = options.minRateBytes ?? MIN_RATE_BYTES;
    this.readerLimits = options.readerLimits ?? DEFAULT_READER_LIMITS;
    ({ server: this.server, credentials: this.credentials } = httpServer(
      {
        // Backstops behind the guard's header deadline and the body timer below, checked every second.
        headersTimeout: HEADERS_MAX_MS + 1_000,
        requestTimeout: HEADERS_MAX_MS + this.bodyTimeoutMs + Math.ceil((options.maxBodyBytes / this.minRateBytes) * 1000) + LINGER_MS,
        connectionsCheckingInterval: 1_000,
        keepAliveTimeout: 5_000,
        handshakeTimeoutMs: HEADERS_TIMEOUT_MS,
      },
      options.tls,
      options.logger,
      'XML-RPC',
    ));
    // Progress, not only a count: headers at the minimum rate, and at the cap the connection with the
    // least progress (idle ones first) makes room, so slow or silent clients cannot lock the engine out.
    this.guard = new ProgressGuard(
      this.server,
      {
        maxConnections: MAX_CONNECTIONS,
        headerTimeoutMs: HEADERS_TIMEOUT_MS,
        headerMaxMs: HEADERS_MAX_MS,
        minRateBytes: this.minRateBytes,
        idleTimeoutMs: IDLE_TIMEOUT_MS,
      },
      options.logger,
      'XML-RPC',
    );
    this.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      try {
        this.onRequest(req, res);
      } catch (err) {
        this.options.logger.error('scheduler proxy: request handling failed', { err });
        req.socket.destroy();
      }
    });
  }

  /** Binds `at` (port 0 picks one) and returns the bound port. */
  async listen(at: HostPort): Promise<number> {
    const port = await bind(this.server, at);
    this.server.on('error', (err) => this.options.logger.error('scheduler proxy listener error', { err }));
    if (this.credentials !== undefined) this.options.logger.info('scheduler proxy serves TLS (https)', this.credentials.describe());
    return port;
  }

  /** Stops accepting, lets calls in flight finish for up to `graceMs`, then cuts what is left. */
  close(graceMs: number): Promise<void> {
    this.credentials?.close();
    this.guard.close();
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      const force = setTimeout(() => this.server.closeAllConnections(), graceMs);
      this.server.close(() => {
        clearTimeout(force);
        resolve();
      });
      this.server.closeIdleConnections();
    });
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const { logger, maxBodyBytes } = this.options;
    const started = performance.now();
    let refused = false;
    let dropped = 0;
    let bodyTimer: NodeJS.Timeout | undefined;
    const calls = new AbortController();

    req.on('error', () => req.socket.destroy());
    res.on('error', () => req.socket.destroy());
    res.on('close', () => {
      clearTimeout(bodyTimer);
      if (!res.writableFinished) calls.abort(new ScorerError('cancelled', 'the caller closed the connection'));
    });

    const reply = (body: string, method: string | undefined, fault?: XmlRpcFault) => {
      if (res.headersSent || res.destroyed) return;
      const bytes = Buffer.from(body, 'utf8');
      res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8', 'content-length': bytes.length });
      res.end(bytes);
      this.calls(method, fault, (performance.now() - started) / 1000);
      logger.debug('scheduler proxy call', {
        method,
        ms: Math.round((performance.now() - started) * 1000) / 1000,
        ...(fault ? { faultCode: fault.code, fault: fault.message } : {}),
      });
    };
    const replyFault = (err: unknown, method?: string) => {
      const fault = err instanceof XmlRpcFault ? err : internalFault(err, logger, method);
      reply(writeFault(fault.code, fault.message), method, fault);
    };
    /** Answers a body that cannot be used while it may still be arriving, and drops the rest of it. */
    const refuse = (err: unknown) => {
      if (refused) return;
      refused = true;
      clearTimeout(bodyTimer);
      replyFault(err);
      if (!req.complete) lingerThenClose(req, res);
    };

    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain; charset=utf-8' });
      res.end('XML-RPC: POST a methodCall\n');
      return;
    }
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      refuse(new XmlRpcFault(FaultCode.transport, `Content-Encoding ${JSON.stringify(encoding)} is not accepted: send the XML as it is`));
    }
    const declared = Number(req.headers['content-length']);
    if (declared > maxBodyBytes) refuse(tooLarge(declared, maxBodyBytes));

    const reader = new MethodCallReader(this.readerLimits);
    let received = 0;
    // The body gets bodyTimeoutMs, and one more second for every minRateBytes received (mod_reqtimeout's body=...,MinRate).
    const bodyStarted = performance.now();
    const bodyDeadline = () => {
      const left = bodyStarted + this.bodyTimeoutMs + (received / this.minRateBytes) * 1000 - performance.now();
      if (left > 0) bodyTimer = setTimeout(bodyDeadline, left);
      else
        refuse(
          new XmlRpcFault(
            FaultCode.transport,
            `the request body did not arrive within ${this.bodyTimeoutMs / 1000} s plus 1 s per ${this.minRateBytes} bytes received`,
          ),
        );
    };
    if (!refused) bodyTimer = setTimeout(bodyDeadline, this.bodyTimeoutMs);
    req.on('data', (chunk: Buffer) => {
      if (refused) {
        dropped += chunk.length;
        if (dropped > maxBodyBytes) req.socket.destroy();
        return;
      }
      received += chunk.length;
      if (received > maxBodyBytes) return refuse(tooLarge(received, maxBodyBytes));
      try {
        reader.write(chunk);
      } catch (err) {
        refuse(err);
      }
    });
    req.on('end', () => {
      clearTimeout(bodyTimer);
      if (refused) return;
      let call: MethodCall;
      try {
        call = reader.end();
      } catch (err) {
        replyFault(err);
        return;
      }
      this.dispatch(
        call,
        calls,
        (value) => reply(value, call.methodName),
        (err) => replyFault(err, call.methodName),
      );
    });
  }

  private dispatch(call: MethodCall, calls: AbortController, reply: (body: string) => void, fail: (err: unknown) => void): void {
    const timer = setTimeout(
      () =>
        calls.abort(
          new ScorerError('deadline_exceeded', `the call took longer than ${this.callTimeoutMs / 1000} s waiting for the oVirt engine`),
        ),
      this.callTimeoutMs,
    );
    let pending: Promise<XmlRpcOut>;
    try {
      pending = this.options.methods(call, calls.signal);
    } catch (err) {
      pending = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    pending
      .then((value) => reply(writeResponse(value)))
      .catch(fail)
      .finally(() => clearTimeout(timer))
      .catch(() => {});
  }
}

function tooLarge(bytes: number, max: number): XmlRpcFault {
  return new XmlRpcFault(FaultCode.transport, `the request body is larger than the limit of ${max} bytes (${bytes} or more)`);
}

function internalFault(err: unknown, logger: Logger, method: string | undefined): XmlRpcFault {
  logger.warn('scheduler proxy call failed', { method, err });
  return new XmlRpcFault(FaultCode.internal, 'internal error');
}

/** Once the fault is sent, drop what still arrives for LINGER_MS, then close unless the body has ended (then the connection is reusable). */
function lingerThenClose(req: http.IncomingMessage, res: http.ServerResponse): void {
  let timer: NodeJS.Timeout | undefined;
  const start = () => {
    if (!req.complete) timer = setTimeout(() => req.socket.destroy(), LINGER_MS).unref();
  };
  req.once('end', () => clearTimeout(timer));
  if (res.writableFinished) start();
  else res.once('finish', start);
}
