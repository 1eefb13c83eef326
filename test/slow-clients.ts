/**
 * Hostile HTTP/1.1 clients for the listeners' progress guards: connections that drip a request
 * (or send nothing) and reconnect as soon as they are cut; and the caller they must not lock
 * out, with a keep-alive connection retried once when the server closed it while idle (as the
 * engine's Java HttpURLConnection and Prometheus's Go client do).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';

export interface DripOptions {
  readonly port: number;
  readonly connections: number;
  /** Sent at once on each connection (e.g. complete headers); then `drip` one byte every `intervalMs`. Empty: nothing at once. */
  readonly head: string;
  /** Dripped byte by byte; empty: the connection stays silent (idle). */
  readonly drip: string;
  readonly intervalMs: number;
  /** TLS with this CA (PEM); undefined: plaintext. */
  readonly ca?: string | undefined;
}

export interface Drippers {
  /** Connections opened so far (reconnections included). */
  readonly opened: () => number;
  /** Connections open now. */
  readonly open: () => number;
  stop(): void;
}

/** `connections` clients that each hold a connection on progress as slow as allowed, reconnecting 100 ms after each cut. */
export function startDrippers(o: DripOptions): Drippers {
  let stopped = false;
  let opened = 0;
  const live = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (fn: () => void, ms: number) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const one = () => {
    if (stopped) return;
    const socket: net.Socket =
      o.ca === undefined
        ? net.connect(o.port, '127.0.0.1')
        : tls.connect({ port: o.port, host: '127.0.0.1', ca: o.ca, servername: 'localhost' });
    opened++;
    live.add(socket);
    socket.on('error', () => {});
    socket.on('data', () => {}); // faults and 408s are read and ignored
    socket.once('close', () => {
      live.delete(socket);
      later(one, 100);
    });
    let i = 0;
    const next = () => {
      if (stopped || socket.destroyed) return;
      if (i < o.drip.length) socket.write(o.drip[i++]!);
      later(next, o.intervalMs);
    };
    socket.once(o.ca === undefined ? 'connect' : 'secureConnect', () => {
      if (o.head !== '') socket.write(o.head);
      if (o.drip !== '') later(next, o.intervalMs);
    });
  };
  for (let i = 0; i < o.connections; i++) one();
  return {
    opened: () => opened,
    open: () => live.size,
    stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      for (const s of live) s.destroy();
    },
  };
}

/**
 * Requests on keep-alive connections, as a real caller makes them: a request on a reused connection
 * the server closed meanwhile is sent once more on a new one (Node's documented `reusedSocket` retry).
 */
export class KeepAliveCaller {
  private readonly agent: http.Agent;

  constructor(
    private readonly port: number,
    private readonly ca?: string,
  ) {
    this.agent =
      ca === undefined ? new http.Agent({ keepAlive: true, maxSockets: 2 }) : new https.Agent({ keepAlive: true, maxSockets: 2, ca });
  }

  /** Resolves with the status and body; rejects on an error or after `timeoutMs`. */
  async request(method: string, path: string, body: string | undefined, timeoutMs: number): Promise<{ status: number; text: string }> {
    try {
      return await this.once(method, path, body, timeoutMs);
    } catch (err) {
      if ((err as { reused?: boolean }).reused !== true) throw err;
      return this.once(method, path, body, timeoutMs);
    }
  }

  close(): void {
    this.agent.destroy();
  }

  private once(method: string, path: string, body: string | undefined, timeoutMs: number): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const get = this.ca === undefined ? http.request : https.request;
      const req = get(
        {
          host: '127.0.0.1',
          port: this.port,
          method,
          path,
          agent: this.agent,
          servername: 'localhost',
          headers: body === undefined ? {} : { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
          res.on('error', reject);
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) =>
        reject(Object.assign(err, { reused: req.reusedSocket && err.code === 'ECONNRESET' })),
      );
      req.end(body);
    });
  }
}
