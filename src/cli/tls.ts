/**
 * How the client commands reach a service over TLS: --tls, --ca, --cert, --key (or their
 * settings, KSM_SCORER_TARGET_TLS, _CA, _CERT, _KEY) as grpc-js channel credentials, and plain
 * words for a handshake that fails.
 */
import { readFileSync } from 'node:fs';
import { connect as tlsConnect, createSecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { ClientSettings } from '../config/load';
import { nameAfter } from '../config/kinds';
import { CLIENT_SETTINGS, type SettingName } from '../config/settings';

const { target: TARGET, tls: TARGET_TLS, ca: TARGET_CA, cert: TARGET_CERT, key: TARGET_KEY } = CLIENT_SETTINGS;

/** parseArgs options of every client command. */
export const TLS_OPTIONS = {
  tls: { type: 'boolean' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
} as const;

export const TLS_USAGE = `      --tls calls over TLS, trusting the system's CAs; --ca FILE (PEM) trusts the CA that signed the
      server's certificate instead; --cert FILE and --key FILE add a client certificate (mutual TLS).
      Each implies --tls; defaults: $${TARGET_TLS.env}=true, $${TARGET_CA.env}, ${nameAfter(TARGET, TARGET_CERT)}, ${nameAfter(TARGET, TARGET_KEY)}.`;

export interface TlsValues {
  readonly tls?: boolean | undefined;
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
}

/** How to call the service: over TLS or not, and the files, each named by the option or the variable that gave it. */
export interface TargetTls {
  readonly on: boolean;
  readonly ca: NamedFile | undefined;
  readonly cert: NamedFile | undefined;
  readonly key: NamedFile | undefined;
}

/** The options, or where one is not given its setting: TLS is on with --tls, or with any of the files. */
export function targetTls(values: TlsValues, settings: Pick<ClientSettings, 'tls' | 'ca' | 'cert' | 'key'>): TargetTls {
  const pick = (option: 'ca' | 'cert' | 'key'): NamedFile | undefined => {
    const path = values[option] ?? settings[option];
    return path === undefined ? undefined : { path, name: values[option] === undefined ? CLIENT_SETTINGS[option].env : `--${option}` };
  };
  const [ca, cert, key] = [pick('ca'), pick('cert'), pick('key')];
  return { on: values.tls === true || settings.tls || ca !== undefined || cert !== undefined || key !== undefined, ca, cert, key };
}

/** The channel credentials `target` asks for, or a usage problem. */
export function channelCredentials(target: TargetTls): grpc.ChannelCredentials | { problem: string } {
  const { ca, cert, key } = target;
  if (!target.on) return grpc.credentials.createInsecure();
  if ((cert === undefined) !== (key === undefined))
    return { problem: '--cert and --key go together: a client certificate and its private key' };
  const contents: (Buffer | null)[] = [];
  for (const file of [ca, key, cert]) {
    try {
      contents.push(file === undefined ? null : readFileSync(file.path));
    } catch (err) {
      return { problem: `${file!.name}: cannot read ${file!.path} (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
    }
  }
  const problem = filesProblem({ ca: contents[0] ?? null, key: contents[1] ?? null, cert: contents[2] ?? null }, { ca, cert, key });
  if (problem !== undefined) return { problem };
  const credentials = grpc.credentials.createSsl(contents[0], contents[1], contents[2]);
  // Node warns when the TLS server name is an IP (grpc-js sends the target's host as it is); for an
  // operator typing 127.0.0.1 that is noise, and the certificate is still checked against the IP.
  process.noDeprecation = true;
  return credentials;
}

/**
 * Whether the files make a TLS client at all, in the options' words: OpenSSL's own text
 * ("error:05800074:x509 certificate routines::key values mismatch") names no option.
 */
function filesProblem(
  { ca, cert, key }: Record<'ca' | 'cert' | 'key', Buffer | null>,
  files: Record<'ca' | 'cert' | 'key', NamedFile | undefined>,
): string | undefined {
  const named = (f: NamedFile | undefined) => `${f!.name} ${f!.path}`;
  if (ca !== null) {
    try {
      createSecureContext({ ca });
    } catch {
      return `${named(files.ca)} is not a PEM certificate bundle`;
    }
  }
  if (cert === null || key === null) return undefined;
  const [certFile, keyFile] = [files.cert, files.key];
  try {
    createSecureContext({ cert });
  } catch {
    return `${named(certFile)} is not a PEM certificate`;
  }
  try {
    createSecureContext({ key });
  } catch {
    return `${named(keyFile)} is not an unencrypted PEM private key`;
  }
  try {
    createSecureContext({ cert, key });
  } catch {
    return `${named(keyFile)} is not the private key of ${named(certFile)}`;
  }
  return undefined;
}

interface NamedFile {
  readonly path: string;
  /** The option (--cert) or the variable (KSM_SCORER_TARGET_CERT) that gave it. */
  readonly name: `--${'ca' | 'cert' | 'key'}` | SettingName;
}

/** What to tell the operator when a call failed in the TLS handshake; undefined for any other failure. */
export function explainTlsFailure(err: grpc.ServiceError): string | undefined {
  if (err.code !== grpc.status.UNAVAILABLE) return undefined;
  const details = err.details ?? '';
  // OpenSSL reports an alert from the server as "...:tlsv13 alert certificate required:<source file>:...".
  const alert = /alert ([a-z ]+)/i.exec(details)?.[1]?.trim();
  if (alert !== undefined && /certificate required|bad certificate|unknown ca|certificate unknown|handshake failure/i.test(alert)) {
    return refusedCertificate(alert);
  }
  const reason = /Last error: (?:Error: )?([^\n]*?)\.?(?: \(\d{4}-\d\d-\d\dT[^)]*\))?\.? Resolution note:/.exec(details)?.[1] ?? details;
  if (/certificate|altnames|self[- ]signed|issuer/i.test(reason)) {
    return `the server's certificate does not verify (${reason}): give the CA that signed it with --ca (or ${TARGET_CA.env}), and a --target host the certificate names`;
  }
  return undefined;
}

/** How long the handshake probe below may take, at most. */
const PROBE_MS = 3_000;

/**
 * grpc-js reports a TLS mismatch as "Failed to connect", whatever the cause. When a call could not
 * connect, one TLS handshake of our own at the target says why, in words: a plaintext client at a
 * TLS server, or a server that refuses this client's certificate (with TLS 1.3 the refusal comes as
 * an alert after the client's side of the handshake, so a byte is sent and the answer awaited).
 * Undefined when the probe finds neither (nothing listens, a plaintext server...).
 */
export async function probeTlsMismatch(host: string, port: number, target: TargetTls): Promise<string | undefined> {
  const plaintext = !target.on;
  const file = (option: 'cert' | 'key') => {
    const path = target[option]?.path;
    try {
      return path === undefined ? undefined : readFileSync(path);
    } catch {
      return undefined;
    }
  };
  type Outcome = { kind: 'tls' | 'alert' | 'other' | 'cut after handshake'; alert?: string };
  let handshaken = false;
  const outcome = await new Promise<Outcome>((resolve) => {
    const socket = tlsConnect({
      host,
      port,
      ALPNProtocols: ['h2'],
      // Only the kind of failure matters here; the server's certificate was judged by grpc-js already.
      rejectUnauthorized: false,
      ...(host.includes(':') || /^[\d.]+$/.test(host) ? {} : { servername: host }),
      ...(plaintext ? {} : { cert: file('cert'), key: file('key') }),
    });
    const timer = setTimeout(() => finish({ kind: plaintext ? 'other' : 'tls' }), PROBE_MS);
    const finish = (result: Outcome) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    socket.once('secureConnect', () => {
      handshaken = true;
      if (plaintext) return finish({ kind: 'tls' });
      // The HTTP/2 preface: a server that refuses the certificate answers it with its alert.
      socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      socket.once('data', () => finish({ kind: 'tls' }));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const alert =
        /alert ([a-z ]+)/i.exec(err.message)?.[1]?.trim() ??
        /ALERT_([A-Z_]+)/
          .exec(err.code ?? '')?.[1]
          ?.toLowerCase()
          .replace(/_/g, ' ');
      finish(alert !== undefined ? { kind: 'alert', alert } : handshaken ? { kind: 'cut after handshake' } : { kind: 'other' });
    });
    socket.once('close', () => finish(handshaken ? { kind: 'cut after handshake' } : { kind: 'other' }));
  });
  if (plaintext) {
    return outcome.kind === 'tls' || outcome.kind === 'alert'
      ? `the server at ${host}:${port} speaks TLS and this call was plaintext: add --tls (system CAs) or --ca FILE, or set ${TARGET_TLS.env}=true or ${TARGET_CA.env}`
      : undefined;
  }
  if (
    outcome.kind === 'alert' &&
    /certificate required|bad certificate|unknown ca|certificate unknown|handshake failure|decrypt error/i.test(outcome.alert!)
  ) {
    return refusedCertificate(outcome.alert!);
  }
  // A server that accepts a client answers the HTTP/2 preface with its SETTINGS; one that ends the
  // connection instead, right after a handshake in which we sent a certificate, refused that certificate.
  const cert = target.cert?.path;
  if (outcome.kind === 'cut after handshake' && cert !== undefined) {
    return `the server refused this client's certificate (${cert}): it ended the connection right after the TLS handshake; give one signed by a CA the server trusts with --cert and --key`;
  }
  return undefined;
}

function refusedCertificate(alert: string): string {
  return `the server refused this client's certificate, or its absence (TLS alert "${alert}"): give one signed by a CA the server trusts with --cert and --key`;
}
