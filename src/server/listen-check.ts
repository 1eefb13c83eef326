/**
 * Whether a listen address (gRPC, the scheduler proxy) can be bound, checked
 * before anything else starts (the simulator, the engine client), and what to
 * tell the operator when it cannot: a port in use is a configuration problem,
 * not a crash.
 */
import { createServer } from 'node:net';

/** Binds `address` (HOST:PORT, already validated) for a moment; a problem naming `setting`, or undefined. */
export async function listenProblem(setting: string, address: string): Promise<string | undefined> {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(address)!;
  const probe = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen({ host: m[1], port: Number(m[2]) }, resolve);
    });
    return undefined;
  } catch (err) {
    return bindProblem(setting, address, err);
  } finally {
    await new Promise((resolve) => probe.close(resolve));
  }
}

/** The operator's wording for a failed bind, from the error's code. */
export function bindProblem(setting: string, address: string, err: unknown): string {
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
  return `${setting}: ${address} ${why}`;
}
