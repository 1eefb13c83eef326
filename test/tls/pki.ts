/**
 * A throwaway PKI made with openssl at test time (Debian's openssl, installed by test/install-deps.sh):
 * two unrelated CAs, server certificates for 127.0.0.1/localhost, client certificates, an expired one.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

export interface Pki {
  readonly dir: string;
  /** Signed everything below but `other*`. */
  readonly ca: string;
  /** A CA that signed nothing the server trusts. */
  readonly otherCa: string;
  readonly server: KeyPair;
  /** A second server certificate (another serial and name) for rotation. */
  readonly serverNext: KeyPair;
  /** Valid from 2020-01-01 to 2020-01-02. */
  readonly serverExpired: KeyPair;
  readonly client: KeyPair;
  /** A client certificate signed by otherCa. */
  readonly otherClient: KeyPair;
  /** Copies `pair` over `target` (the files a service was started with): a rotation. */
  install(pair: KeyPair, target: KeyPair): void;
  remove(): void;
}

const CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
default_ca = test
[test]
database = db/index.txt
new_certs_dir = db
serial = db/serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
`;

export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'ksm-pki-'));
  const path = (name: string) => join(dir, name);
  writeFileSync(path('openssl.cnf'), CONFIG);
  mkdirSync(path('db'));
  writeFileSync(path('db/index.txt'), '');
  writeFileSync(path('db/serial'), '01\n');
  const openssl = (...args: string[]) =>
    execFileSync('openssl', args, {
      cwd: dir,
      env: { ...process.env, OPENSSL_CONF: path('openssl.cnf') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

  const ca = (name: string) => {
    openssl(
      'req',
      '-x509',
      ...newKey,
      '-keyout',
      path(`${name}.key`),
      '-out',
      path(`${name}.pem`),
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
    return path(`${name}.pem`);
  };
  let serial = 100;
  const leaf = (name: string, signer: string, use: 'serverAuth' | 'clientAuth', dates?: [string, string]): KeyPair => {
    const pair = { cert: path(`${name}.pem`), key: path(`${name}.key`) };
    const ext = [
      `extendedKeyUsage=${use}`,
      'basicConstraints=CA:FALSE',
      ...(use === 'serverAuth' ? ['subjectAltName=IP:127.0.0.1,DNS:localhost'] : []),
    ];
    openssl(
      'req',
      ...newKey,
      '-keyout',
      pair.key,
      '-out',
      path(`${name}.csr`),
      '-subj',
      `/CN=${name}`,
      ...ext.flatMap((e) => ['-addext', e]),
    );
    if (dates === undefined) {
      openssl(
        'x509',
        '-req',
        '-in',
        path(`${name}.csr`),
        '-CA',
        path(`${signer}.pem`),
        '-CAkey',
        path(`${signer}.key`),
        '-set_serial',
        String(serial++),
        '-days',
        '2',
        '-copy_extensions',
        'copy',
        '-out',
        pair.cert,
      );
    } else {
      openssl(
        'ca',
        '-batch',
        '-cert',
        path(`${signer}.pem`),
        '-keyfile',
        path(`${signer}.key`),
        '-in',
        path(`${name}.csr`),
        '-out',
        pair.cert,
        '-startdate',
        dates[0],
        '-enddate',
        dates[1],
        '-notext',
      );
    }
    return pair;
  };

  const pki = {
    dir,
    ca: ca('ca'),
    otherCa: ca('other-ca'),
    server: leaf('server', 'ca', 'serverAuth'),
    serverNext: leaf('server-next', 'ca', 'serverAuth'),
    serverExpired: leaf('server-expired', 'ca', 'serverAuth', ['20200101000000Z', '20200102000000Z']),
    client: leaf('client', 'ca', 'clientAuth'),
    otherClient: leaf('other-client', 'other-ca', 'clientAuth'),
    install(pair: KeyPair, target: KeyPair) {
      // Each file replaced in place, one after the other, as a copy does it (not an atomic swap).
      copyFileSync(pair.cert, target.cert);
      copyFileSync(pair.key, target.key);
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
  return pki;
}

/** A copy of `pair` under new names, for a service whose files a test then rotates. */
export function servedCopy(pki: Pki, pair: KeyPair, name: string): KeyPair {
  const copy = { cert: join(pki.dir, `${name}.pem`), key: join(pki.dir, `${name}.key`) };
  pki.install(pair, copy);
  return copy;
}
