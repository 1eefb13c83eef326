import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { engineClient, startSimulator } from '../helpers';

const FIXTURES = join(__dirname, '..', 'fixtures', 'tls');

describe('TLS to the engine', () => {
  let sim: SimulatedEngine;
  beforeAll(async () => {
    sim = await startSimulator({
      tls: { key: readFileSync(join(FIXTURES, 'engine.key'), 'utf8'), cert: readFileSync(join(FIXTURES, 'engine.pem'), 'utf8') },
    });
  });
  afterAll(async () => sim.stop());

  const listHosts = async (caFile: string | undefined, insecure: boolean) => {
    const client = engineClient(sim, { caFile, insecure });
    try {
      return await client.listHosts();
    } finally {
      await client.close();
    }
  };

  it('verifies the engine certificate against OVIRT_CA_FILE', async () => {
    expect(sim.url).toMatch(/^https:/);
    expect(await listHosts(join(FIXTURES, 'ca.pem'), false)).toHaveLength(8);
  });

  it('refuses a certificate the system roots do not vouch for', async () => {
    await expect(listHosts(undefined, false)).rejects.toMatchObject({
      code: 'engine_unreachable',
      message: expect.stringMatching(/CERT|SIGN|SELF/),
    });
  });

  it('skips verification only when OVIRT_INSECURE is set', async () => {
    expect(await listHosts(undefined, true)).toHaveLength(8);
  });
});
