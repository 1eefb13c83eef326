/**
 * The settings that name files, read while the configuration is loaded so a problem stops the
 * start: each listener's TLS files (checked as the listener will load them, and again on each
 * reload, src/net/tls.ts), and how to reach and log in to the engine.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import { envNames, type Setting, type TlsFileSettings, type ValuesOf } from './kinds';
import type { SERVICE_SETTINGS } from './settings';

type ConnectionSettings = (typeof SERVICE_SETTINGS)['connection'];

/** A file named by an environment variable, so every problem can say which variable to fix. */
export interface FileSetting {
  readonly env: string;
  readonly path: string;
}

/** One listener's TLS files; a client CA means mutual TLS. */
export interface TlsFiles {
  readonly cert: FileSetting;
  readonly key: FileSetting;
  readonly clientCa: FileSetting | undefined;
  /** How often the files are read again. */
  readonly reloadMs: number;
}

export interface TlsContents {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly clientCa: Buffer | undefined;
  /** The served certificate (the first of the chain), for logs. */
  readonly leaf: X509Certificate;
}

/**
 * Reads and checks the files: every certificate complete and parseable, the served one not expired,
 * a key that matches it. Returns the contents, or one problem naming the variable.
 * Synchronous on purpose: a few KB, once per interval, and the same code at start and on rotation.
 */
export function loadTlsFiles(files: TlsFiles, now: Date = new Date()): TlsContents | string {
  const read = (file: FileSetting) => {
    try {
      return readFileSync(file.path);
    } catch (err) {
      return `${file.env}: cannot read ${file.path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
    }
  };
  const cert = read(files.cert);
  if (typeof cert === 'string') return cert;
  const key = read(files.key);
  if (typeof key === 'string') return key;
  const clientCa = files.clientCa === undefined ? undefined : read(files.clientCa);
  if (typeof clientCa === 'string') return clientCa;

  const chain = certificates(cert, files.cert);
  if (typeof chain === 'string') return chain;
  const leaf = chain[0]!;
  const notAfter = new Date(leaf.validTo);
  if (!(notAfter > now)) return `${files.cert.env}: the certificate in ${files.cert.path} expired on ${notAfter.toISOString()}`;
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    return `${files.key.env}: ${files.key.path} holds no usable private key (PEM, unencrypted; truncated or still being written?)`;
  }
  if (!leaf.checkPrivateKey(privateKey))
    return `${files.key.env}: the key in ${files.key.path} does not match the certificate in ${files.cert.env} (${files.cert.path})`;
  if (clientCa !== undefined) {
    const cas = certificates(clientCa, files.clientCa!);
    if (typeof cas === 'string') return cas;
  }
  const contents = { cert, key, clientCa, leaf };
  try {
    tls.createSecureContext(tlsContextOptions(contents));
  } catch (err) {
    return `${files.cert.env}: the files cannot serve TLS: ${(err as Error).message}`;
  }
  return contents;
}

const BEGIN = '-----BEGIN CERTIFICATE-----';
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

/** The PEM certificates of a file; a file cut inside one (half-written) is a problem, not a shorter chain. */
function certificates(pem: Buffer, file: FileSetting): X509Certificate[] | string {
  const text = pem.toString('latin1');
  const begun = text.split(BEGIN).length - 1;
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (begun === 0) return `${file.env}: ${file.path} holds no PEM certificate`;
  if (blocks.length !== begun) return `${file.env}: ${file.path} ends inside a certificate (truncated or still being written?)`;
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch {
    return `${file.env}: ${file.path} holds a certificate that cannot be parsed`;
  }
}

export function tlsContextOptions(c: Omit<TlsContents, 'leaf'>): tls.SecureContextOptions {
  return { cert: c.cert, key: c.key, ...(c.clientCa === undefined ? {} : { ca: c.clientCa }) };
}

type TlsFileKeys = keyof TlsFileSettings;
/** A listener's settings, with its TLS files resolved: undefined = plaintext. */
export type WithTls<V> = Omit<V, TlsFileKeys> & { readonly tls: TlsFiles | undefined };

/** Resolves a listener's TLS settings into its files (or none), checked as the listener will load them. */
export function readTls<V extends Record<TlsFileKeys, string | undefined>>(
  values: V,
  group: TlsFileSettings,
  reloadMs: number,
  problems: string[],
): WithTls<V> {
  const { tlsCert, tlsKey, tlsClientCa, ...rest } = values;
  const file = (setting: Setting<unknown>, path: string) => ({ env: setting.env, path });
  let tls: TlsFiles | undefined;
  if (tlsCert === undefined || tlsKey === undefined) {
    if (tlsCert !== undefined || tlsKey !== undefined) {
      const [missing, given] = tlsCert === undefined ? [group.tlsCert, group.tlsKey] : [group.tlsKey, group.tlsCert];
      problems.push(`${missing.env}: required with ${given.env}`);
    } else if (tlsClientCa !== undefined) {
      problems.push(`${group.tlsClientCa.env}: mutual TLS needs TLS: set ${group.tlsCert.env} and ${group.tlsKey.env} too`);
    }
  } else {
    tls = {
      cert: file(group.tlsCert, tlsCert),
      key: file(group.tlsKey, tlsKey),
      clientCa: tlsClientCa === undefined ? undefined : file(group.tlsClientCa, tlsClientCa),
      reloadMs,
    };
    const loaded = loadTlsFiles(tls);
    if (typeof loaded === 'string') problems.push(loaded);
  }
  return { ...rest, tls };
}

/** How to reach and log in to a real engine. */
export interface EngineConnection {
  /** API base, e.g. https://engine.example.com/ovirt-engine/api */
  readonly url: string;
  readonly username: string;
  readonly password: string;
  /** PEM bundle to verify the engine's certificate; undefined = system roots. */
  readonly caFile: string | undefined;
  readonly insecure: boolean;
}

/** The engine to reach, checked whole: undefined when OVIRT_URL is unset (the embedded simulator). */
export function readConnection(
  c: ValuesOf<ConnectionSettings>,
  group: ConnectionSettings,
  problems: string[],
): EngineConnection | undefined {
  const {
    url: OVIRT_URL,
    username: OVIRT_USERNAME,
    password: OVIRT_PASSWORD,
    passwordFile: OVIRT_PASSWORD_FILE,
    caFile: OVIRT_CA_FILE,
    insecure: OVIRT_INSECURE,
  } = envNames(group);
  if (c.url === undefined) {
    // Without OVIRT_URL the simulator is used: settings for a real engine would be silently ignored.
    const set = [
      [OVIRT_USERNAME, c.username],
      [OVIRT_PASSWORD, c.password],
      [OVIRT_PASSWORD_FILE, c.passwordFile],
      [OVIRT_CA_FILE, c.caFile],
      [OVIRT_INSECURE, c.insecure ? 'true' : undefined],
    ].flatMap(([name, value]) => (value === undefined ? [] : [name]));
    if (set.length > 0) {
      problems.push(
        `${OVIRT_URL}: unset, so the embedded simulator would be used and ${set.join(', ')} ignored; set ${OVIRT_URL} for a real engine, or unset ${set.length === 1 ? 'it' : 'them'}`,
      );
    }
    return undefined;
  }
  // A recording (`ksm-scorer engine record DIR`), served on loopback: no account, no TLS; connectEngine reads it.
  if (c.url.startsWith('file:')) {
    if (c.url.length === 'file:'.length)
      problems.push(`${OVIRT_URL}: file: needs the directory of a recording, e.g. file:/var/tmp/engine-recording`);
    return { url: c.url, username: '', password: '', caFile: undefined, insecure: false };
  }
  if (c.insecure && c.caFile !== undefined)
    problems.push(`${OVIRT_INSECURE}: true disables verification, so ${OVIRT_CA_FILE} would be ignored; set only one`);
  if (c.caFile !== undefined) {
    try {
      const pem = readFileSync(c.caFile, 'utf8');
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) problems.push(`${OVIRT_CA_FILE}: ${c.caFile} holds no PEM certificate`);
    } catch (err) {
      problems.push(`${OVIRT_CA_FILE}: cannot read ${c.caFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  let url = c.url.replace(/\/+$/, '');
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') problems.push(`${OVIRT_URL}: must be an http(s) URL`);
    // Credentials in the URL would end up in logs; they belong in OVIRT_USERNAME/OVIRT_PASSWORD.
    if (parsed.username || parsed.password)
      problems.push(`${OVIRT_URL}: must not contain credentials, use ${OVIRT_USERNAME} and ${OVIRT_PASSWORD}`);
    if (!parsed.pathname.replace(/\/+$/, '').endsWith('/api'))
      problems.push(
        `${OVIRT_URL}: must end in /api (e.g. https://engine.example.com/ovirt-engine/api), got ${JSON.stringify(parsed.pathname)}`,
      );
    url = `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
  } catch {
    problems.push(`${OVIRT_URL}: not a valid URL`);
  }

  if (c.username === undefined) problems.push(`${OVIRT_USERNAME}: required when ${OVIRT_URL} is set (e.g. admin@internal)`);

  let password = c.password;
  if (c.password !== undefined && c.passwordFile !== undefined) {
    problems.push(`${OVIRT_PASSWORD_FILE}: set either ${OVIRT_PASSWORD} or ${OVIRT_PASSWORD_FILE}, not both`);
  } else if (c.passwordFile !== undefined) {
    try {
      password = readFileSync(c.passwordFile, 'utf8').replace(/\r?\n$/, '');
      if (password === '') problems.push(`${OVIRT_PASSWORD_FILE}: ${c.passwordFile} is empty`);
    } catch (err) {
      problems.push(`${OVIRT_PASSWORD_FILE}: cannot read ${c.passwordFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  } else if (c.password === undefined) {
    problems.push(`${OVIRT_PASSWORD}: required when ${OVIRT_URL} is set (or ${OVIRT_PASSWORD_FILE})`);
  }
  return { url, username: c.username ?? '', password: password ?? '', caFile: c.caFile, insecure: c.insecure };
}
