/**
 * The kinds of value a setting may hold (a bounded quantity, a flag, text, one of a list, a
 * HOST:PORT address, a process count), each with how it is read from text and how it is
 * documented. The settings table (settings.ts) is built from these.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { availableParallelism } from 'node:os';

/** One environment variable: how it is read and how it is documented. `N`: its name, as written in the table. */
export interface Setting<T, N extends string = string> {
  readonly env: N;
  /** The default as the README shows it. */
  readonly defaultText: string;
  /** Accepted values as the README shows them ('' when any text goes). */
  readonly rangeText: string;
  readonly description: string;
  /** Never logged, never echoed in a problem. */
  readonly secret?: boolean;
  /** An empty value is a value (handed to parse), not "unset, use the default". */
  readonly emptyIsValue?: boolean;
  readonly default: T;
  /** The value, or a problem that says what is accepted. */
  parse(raw: string): Parsed<T>;
}

export type Parsed<T> = { value: T } | { problem: string };
/** A setting's name as the docs' tables write it, when another row names it: `NAME` in backticks. */
export const inCode = (setting: Setting<unknown>) => `\`${setting.env}\``;
/** What a setting's name adds to `base`'s (`_FILE` of OVIRT_PASSWORD_FILE), for help text that abbreviates; a name that does not start with base's does not compile. */
export const nameAfter = <B extends string>(base: Setting<unknown, B>, setting: Setting<unknown, `${NoInfer<B>}${string}`>) =>
  setting.env.slice(base.env.length);
/** A value as a problem echoes it: quoted, and cut short. */
export const shown = (raw: string) => JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}...` : raw);

interface NumberSpec<D, N extends string> {
  env: N;
  default: D;
  min: number;
  max: number;
  description: string;
  /** Shown instead of the default value, e.g. when it is computed from other settings. */
  defaultText?: string;
}

/** A number of `unit`s, bounded; `scale` converts it to the unit the code uses (seconds -> ms). */
function quantity<D extends number | undefined, N extends string>(
  unit: string,
  integer: boolean,
  scale: number,
  spec: NumberSpec<D, N>,
): Setting<number | D, N> {
  const what = integer ? 'an integer' : 'a number';
  return {
    env: spec.env,
    defaultText: spec.defaultText ?? (spec.default === undefined ? 'unset' : `${spec.default}${unit === '' ? '' : ` ${unit}`}`),
    rangeText: `${spec.min} to ${spec.max}`,
    description: spec.description,
    default: (spec.default === undefined ? undefined : spec.default * scale) as D,
    parse(raw): Parsed<number> {
      // Plain decimals only: Number() would also take 0x10, 0b101, 0o7, 1e3 and .5.
      const n = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < spec.min || n > spec.max) {
        return { problem: `must be ${what} from ${spec.min} to ${spec.max}${unit === '' ? '' : ` (${unit})`}, got ${shown(raw)}` };
      }
      return { value: Math.round(n * scale) };
    },
  };
}
export const seconds = <D extends number | undefined, N extends string>(spec: NumberSpec<D, N>) => quantity('s', false, 1000, spec);
export const count = <D extends number | undefined, N extends string>(unit: string, spec: NumberSpec<D, N>) =>
  quantity(unit, true, 1, spec);
export const mebibytes = <D extends number | undefined, N extends string>(spec: NumberSpec<D, N>) => quantity('MiB', false, 2 ** 20, spec);

export function flag<N extends string>(spec: { env: N; default: boolean; description: string }): Setting<boolean, N> {
  return {
    env: spec.env,
    defaultText: String(spec.default),
    rangeText: 'true, false',
    description: spec.description,
    default: spec.default,
    parse(raw) {
      if (/^(true|1|yes)$/i.test(raw)) return { value: true };
      if (/^(false|0|no)$/i.test(raw)) return { value: false };
      return { problem: `must be true or false (or 1, 0, yes, no), got ${shown(raw)}` };
    },
  };
}

export function text<N extends string>(spec: {
  env: N;
  description: string;
  defaultText: string;
  secret?: boolean;
}): Setting<string | undefined, N> {
  return {
    env: spec.env,
    defaultText: spec.defaultText,
    rangeText: '',
    description: spec.description,
    ...(spec.secret ? { secret: true } : {}),
    default: undefined,
    parse: (raw) => ({ value: raw }),
  };
}

export function oneOf<const V extends string, N extends string>(spec: {
  env: N;
  values: readonly V[];
  default: V;
  description: string;
}): Setting<V, N> {
  return {
    env: spec.env,
    defaultText: spec.default,
    rangeText: spec.values.join(', '),
    description: spec.description,
    default: spec.default,
    parse: (raw) =>
      (spec.values as readonly string[]).includes(raw)
        ? { value: raw as V }
        : { problem: `must be one of ${spec.values.join(', ')}, got ${shown(raw)}` },
  };
}

/** A TCP address as listeners bind it and clients dial it: the host without IPv6 brackets. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * HOST:PORT, the one parser of addresses: an IP literal must be a valid one (256.1.1.1 is refused
 * here, not at bind time), an IPv6 one in brackets. `minPort` 1 for an address to dial (port 0
 * binds any free port); `example` is the address the problem shows.
 */
export function parseHostPort(raw: string, minPort: 0 | 1 = 0, example = '0.0.0.0:50051'): Parsed<HostPort> {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(raw);
  const bad = { problem: `must be HOST:PORT, e.g. ${example} or [::1]:50051, got ${shown(raw)}` };
  const port = Number(m?.[3]);
  if (m === null || port < minPort || port > 65_535) return bad;
  const host = m[1] ?? m[2]!;
  const valid =
    m[1] !== undefined ? isIPv6(host) : /^[\d.]+$/.test(host) ? isIPv4(host) : /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host);
  return valid ? { value: { host, port } } : bad;
}

/** HOST:PORT as the operator wrote it (IPv6 in brackets), `port` instead of its own when given (the one port 0 bound). */
export function formatHostPort(address: HostPort, port = address.port): string {
  return `${address.host.includes(':') ? `[${address.host}]` : address.host}:${port}`;
}

export function address<D extends HostPort | undefined, N extends string>(spec: {
  env: N;
  default: D;
  /** undefined: as parsed; `unset: off` when the default is none. */
  defaultText?: string;
  description: string;
  /** 1: an address to dial, where port 0 means nothing. */
  minPort?: 0 | 1;
}): Setting<HostPort | D, N> {
  const example = spec.minPort === 1 ? '127.0.0.1:50051' : '0.0.0.0:50051';
  return {
    env: spec.env,
    defaultText: spec.default === undefined ? 'unset: off' : formatHostPort(spec.default),
    rangeText: 'HOST:PORT',
    description: spec.description,
    default: spec.default,
    parse: (raw) => parseHostPort(raw, spec.minPort, example),
  };
}

/** HOST:PORT of a listener that is on by default; set empty (or `off`) to turn it off. */
export function optionalAddress<N extends string>(spec: {
  env: N;
  default: HostPort;
  description: string;
}): Setting<HostPort | undefined, N> {
  return {
    env: spec.env,
    defaultText: formatHostPort(spec.default),
    rangeText: 'HOST:PORT, or empty or `off`: no listener',
    description: spec.description,
    default: spec.default,
    emptyIsValue: true,
    parse: (raw) => (raw === '' || raw === 'off' ? { value: undefined } : parseHostPort(raw)),
  };
}

/** A process count: an integer, or `auto`: os.availableParallelism(), the CPUs this process may run on. */
export function processes<N extends string>(spec: { env: N; default: number; max: number; description: string }): Setting<number, N> {
  const integer = count('', { ...spec, min: 1 });
  return {
    ...integer,
    rangeText: `${integer.rangeText}, auto`,
    parse(raw) {
      if (raw === 'auto') return { value: Math.min(spec.max, availableParallelism()) };
      const parsed = integer.parse(raw);
      return 'problem' in parsed ? { problem: `must be an integer from 1 to ${spec.max}, or auto, got ${shown(raw)}` } : parsed;
    },
  };
}

/** A listener's TLS files: `${prefix}_CERT`, `_KEY` and `_CLIENT_CA` (loadConfig checks them together); `reload` re-reads them. */
export function tlsFiles<P extends string>(prefix: P, listener: string, reload: Setting<unknown>) {
  return {
    tlsCert: text({
      env: `${prefix}_CERT` as const,
      defaultText: 'unset: plaintext',
      description: `PEM certificate (chain) the ${listener} listener serves; with the key it turns TLS on. Re-read while running (${inCode(reload)})`,
    }),
    tlsKey: text({
      env: `${prefix}_KEY` as const,
      defaultText: 'required with the certificate',
      description: `PEM private key of that certificate (unencrypted; keep the file readable by the service only)`,
    }),
    tlsClientCa: text({
      env: `${prefix}_CLIENT_CA` as const,
      defaultText: 'unset: any client',
      description: `PEM bundle of CAs: set, the ${listener} listener is mutual TLS and refuses, in the handshake, a client without a certificate signed by one of them`,
    }),
  };
}
/** The settings of one listener's TLS files (of any listener: their names as `string`). */
export type TlsFileSettings = ReturnType<typeof tlsFiles<string>>;

/** The values a group of settings reads into. */
export type ValuesOf<G> = { readonly [K in keyof G]: G[K] extends Setting<infer T> ? T : never };

/** A group's variable names by key, for problems that name a setting. */
export function envNames<G extends Record<string, Setting<unknown>>>(group: G): { readonly [K in keyof G]: G[K]['env'] } {
  return Object.fromEntries(Object.entries(group).map(([k, s]) => [k, s.env])) as { [K in keyof G]: G[K]['env'] };
}
