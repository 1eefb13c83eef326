import { describe, expect, it } from 'vitest';
import { readClientSettings } from '../../src/config/load';

const none = { target: false, tls: false, ca: false, cert: false, key: false };

describe('the client commands settings (KSM_SCORER_TARGET*), read by the kinds of the settings table', () => {
  it('defaults to plaintext calls to 127.0.0.1:50051; an empty variable is unset', () => {
    expect(readClientSettings({}, none)).toEqual({
      values: { target: { host: '127.0.0.1', port: 50051 }, tls: false, ca: undefined, cert: undefined, key: undefined },
      problems: [],
    });
    expect(readClientSettings({ KSM_SCORER_TARGET: '', KSM_SCORER_TARGET_CA: '' }, none).values).toMatchObject({
      target: { host: '127.0.0.1', port: 50051 },
      ca: undefined,
    });
  });

  it('reads each variable; true, 1 and yes turn TLS on', () => {
    for (const on of ['true', '1', 'YES']) expect(readClientSettings({ KSM_SCORER_TARGET_TLS: on }, none).values.tls, on).toBe(true);
    expect(readClientSettings({ KSM_SCORER_TARGET: '[::1]:6000', KSM_SCORER_TARGET_CERT: '/c.pem' }, none).values).toMatchObject({
      target: { host: '::1', port: 6000 },
      cert: '/c.pem',
    });
  });

  it('a bad value is a problem naming the variable, the value echoed short; a variable its option overrides is not read', () => {
    expect(readClientSettings({ KSM_SCORER_TARGET: 'localhost', KSM_SCORER_TARGET_TLS: 'maybe' }, none).problems).toEqual([
      'KSM_SCORER_TARGET must be HOST:PORT, e.g. 127.0.0.1:50051 or [::1]:50051, got "localhost"',
      'KSM_SCORER_TARGET_TLS must be true or false (or 1, 0, yes, no), got "maybe"',
    ]);
    expect(readClientSettings({ KSM_SCORER_TARGET: '127.0.0.1:0' }, none).problems).toHaveLength(1);
    expect(
      readClientSettings({ KSM_SCORER_TARGET: 'localhost', KSM_SCORER_TARGET_TLS: 'maybe' }, { ...none, target: true, tls: true }).problems,
    ).toEqual([]);
  });
});
