/**
 * How the client commands reach a service over TLS: --tls, --ca, --cert, --key (or
 * KSM_SCORER_TARGET_TLS, _CA, _CERT, _KEY) as grpc-js channel credentials, and plain words for a
 * handshake that fails.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';

/** parseArgs options of every client command. */
export const TLS_OPTIONS = {
  tls: { type: 'boolean' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
} as const;

export const TLS_USAGE = `      --tls calls over TLS, trusting the system's CAs; --ca FILE (PEM) trusts the CA that signed the
      server's certificate instead; --cert FILE and --key FILE add a client certificate (mutual TLS).
      Each implies --tls; defaults: $KSM_SCORER_TARGET_TLS (true), $KSM_SCORER_TARGET_CA, _CERT, _KEY.`;

export interface TlsValues {
  readonly tls?: boolean | undefined;
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
}

/** The channel credentials the options (or the environment) ask for, or a usage problem. */
export function channelCredentials(values: TlsValues, env: Readonly<Record<string, string | undefined>> = process.env): grpc.ChannelCredentials | { problem: string } {
  const pick = (option: 'ca' | 'cert' | 'key') => {
    const variable = `KSM_SCORER_TARGET_${option.toUpperCase()}`;
    const path = values[option] ?? (env[variable] || undefined);
    return path === undefined ? undefined : { path, name: values[option] === undefined ? variable : `--${option}` };
  };
  const [ca, cert, key] = [pick('ca'), pick('cert'), pick('key')];
  const on = values.tls === true || /^(true|1|yes)$/i.test(env.KSM_SCORER_TARGET_TLS ?? '') || ca !== undefined || cert !== undefined || key !== undefined;
  if (!on) return grpc.credentials.createInsecure();
  if ((cert === undefined) !== (key === undefined)) return { problem: '--cert and --key go together: a client certificate and its private key' };
  const contents: (Buffer | null)[] = [];
  for (const file of [ca, key, cert]) {
    try {
      contents.push(file === undefined ? null : readFileSync(file.path));
    } catch (err) {
      return { problem: `${file!.name}: cannot read ${file!.path} (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
    }
  }
  const credentials = grpc.credentials.createSsl(contents[0], contents[1], contents[2]);
  // Node warns when the TLS server name is an IP (grpc-js sends the target's host as it is); for an
  // operator typing 127.0.0.1 that is noise, and the certificate is still checked against the IP.
  process.noDeprecation = true;
  return credentials;
}

/** What to tell the operator when a call failed in the TLS handshake; undefined for any other failure. */
export function explainTlsFailure(err: grpc.ServiceError): string | undefined {
  if (err.code !== grpc.status.UNAVAILABLE) return undefined;
  const details = err.details ?? '';
  // OpenSSL reports an alert from the server as "...:tlsv13 alert certificate required:<source file>:...".
  const alert = /alert ([a-z ]+)/i.exec(details)?.[1]?.trim();
  if (alert !== undefined && /certificate required|bad certificate|unknown ca|certificate unknown|handshake failure/i.test(alert)) {
    return `the server refused this client's certificate, or its absence (TLS alert "${alert}"): give one signed by a CA the server trusts with --cert and --key`;
  }
  const reason = /Last error: (?:Error: )?([^\n]*?)\.?(?: \(\d{4}-\d\d-\d\dT[^)]*\))?\.? Resolution note:/.exec(details)?.[1] ?? details;
  if (/certificate|altnames|self[- ]signed|issuer/i.test(reason)) {
    return `the server's certificate does not verify (${reason}): give the CA that signed it with --ca (or KSM_SCORER_TARGET_CA), and a --target host the certificate names`;
  }
  return undefined;
}
