/**
 * Binding a listener to the {host, port} the configuration parsed (src/config/kinds.ts), the same
 * way for the gRPC, XML-RPC and /metrics listeners; whether an address can be bound, checked before
 * anything else starts (the simulator, the engine client); and what to tell the operator when it
 * cannot: a port in use is a configuration problem, not a crash.
 */
import { createServer, isIP, type AddressInfo, type Server } from 'node:net';
import { formatHostPort, type HostPort } from '../config/kinds';
import type { SettingName } from '../config/settings';

/** Binds `server` to `at` (port 0 picks a free one) and returns the bound port; a failed bind rejects. */
export function bind(server: Server, at: HostPort): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: at.host, port: at.port }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Binds `at` for a moment; a problem naming `setting`, or undefined. */
export async function listenProblem(setting: SettingName, at: HostPort): Promise<string | undefined> {
  const probe = createServer();
  try {
    await bind(probe, at);
    return undefined;
  } catch (err) {
    return bindProblem(setting, at, err);
  } finally {
    await new Promise((resolve) => probe.close(resolve));
  }
}

/** The operator's wording for a failed bind, from the error's code. */
export function bindProblem(setting: SettingName, at: HostPort, err: unknown): string {
  const text = `${(err as NodeJS.ErrnoException)?.code ?? ''} ${(err as Error)?.message ?? String(err)}`;
  const why = /EADDRINUSE/.test(text)
    ? 'is already in use by another process (pick another port, or stop that process)'
    : /EADDRNOTAVAIL/.test(text)
      ? 'is not an address of this machine'
      : /EACCES/.test(text)
        ? 'needs privileges this process lacks (ports below 1024)'
        : /ENOTFOUND|EAI_AGAIN/.test(text)
          ? 'names a host that does not resolve'
          : `cannot be listened on (${text.trim()})`;
  return `${setting}: ${formatHostPort(at)} ${why}`;
}

/** Whether `host` (an IPv6 one with or without brackets) is loopback only (127.0.0.0/8, ::1, localhost): the one place plaintext is not a warning. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (bare === 'localhost' || bare === '::1') return true;
  return isIP(bare) === 4 && bare.startsWith('127.');
}
