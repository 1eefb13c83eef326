/**
 * Engine status with KSM_SCORER_WORKERS=2: the primary reads the engine's
 * view and logs it once; the workers report each XML-RPC call they answer to
 * it and ask it for GetEngineStatus, so any worker answers with the calls of
 * all of them; the gauges are the primary's, once.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadEngineStatusProto } from '../../src/engine-view/service';
import type { GetEngineStatusResponse__Output } from '../../src/generated/ksmscorer/v1/GetEngineStatusResponse';
import { engineEnv, startSimulator, unary, waitUntil } from '../helpers';
import { scrape, valueOf } from '../metrics/scrape';
import { killAll, type Proc, spawnProc, waitForLog } from '../processes';
import { call, engineCostCall } from '../scheduler-proxy/wire';

const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');
const STARTUP_MS = 30_000;

const logLines = (p: Proc) =>
  p.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string; metrics?: string; ovirtProxyPort?: number; address?: string });

describe('engine status with worker processes', () => {
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `make test` (it builds first)');
  });
  afterEach(killAll);

  it("any worker answers GetEngineStatus with the primary's view and the calls every worker answered; the view is logged once", async () => {
    const sim = await startSimulator({ hosts: 45, vms: 200 });
    try {
      const p = spawnProc(process.execPath, [CLI, 'serve'], {
        ...engineEnv(sim),
        KSM_SCORER_WORKERS: '2',
        KSM_SCORER_OVIRT_PROXY_LISTEN: '127.0.0.1:0',
      });
      const port = (await waitForLog(p, /"address":"127\.0\.0\.1:(\d+)"[^\n]*"msg":"ksm-scorer listening"/, STARTUP_MS))[1]!;
      const proxyPort = Number(
        (await waitForLog(p, /"address":"127\.0\.0\.1:(\d+)"[^\n]*"msg":"oVirt scheduler proxy listening"/, STARTUP_MS))[1],
      );
      await waitUntil(
        () =>
          logLines(p).filter((l) => l.msg === 'worker listening').length >= 2 &&
          logLines(p).some((l) => l.msg === "the engine's view of ksm-scorer"),
        STARTUP_MS,
      );
      const metricsPort = Number(/:(\d+)\/metrics/.exec(logLines(p).find((l) => l.msg === 'ksm-scorer listening')!.metrics!)![1]);

      // Clients on connections of their own, so the primary hands them to both workers.
      const ask = async () => {
        const client = new (loadEngineStatusProto().ksmscorer.v1.EngineStatusService)(
          `127.0.0.1:${port}`,
          grpc.credentials.createInsecure(),
          {
            'grpc.use_local_subchannel_pool': 1,
          },
        ) as unknown as grpc.Client;
        try {
          return await unary<object, GetEngineStatusResponse__Output>(client, 'GetEngineStatus', {}, { deadline: Date.now() + 10_000 });
        } finally {
          client.close();
        }
      };
      for (const res of await Promise.all([ask(), ask(), ask(), ask()])) expect(res.state).toBe('ENGINE_USE_STATE_NOT_CALLED');

      const vm = [...sim.inventory.vms.values()].find((v) => v.hostId !== undefined)!;
      const hosts = [...sim.inventory.hosts.keys()].slice(0, 5);
      // Each call on a new connection: they land on both workers.
      for (let i = 0; i < 6; i++) await call(proxyPort, engineCostCall(vm.id, hosts));
      let res!: GetEngineStatusResponse__Output;
      for (let tries = 0; tries < 50; tries++) {
        res = await ask();
        if (res.calls!.counts[0]?.count === '6') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(res.state).toBe('ENGINE_USE_STATE_IN_USE');
      expect(res.calls!.counts).toEqual([{ method: 'runCostFunctions', outcome: 'ok', count: '6' }]);

      const { text } = await scrape(metricsPort);
      expect(valueOf(text, 'ksm_scorer_engine_clusters_weighing_unit')).toBe(1);
      expect(valueOf(text, 'ksm_scorer_xmlrpc_last_call_timestamp_seconds')).toBeGreaterThan(0);
      expect(logLines(p).filter((l) => l.msg === "the engine's view of ksm-scorer")).toHaveLength(1);
    } finally {
      await killAll();
      await sim.stop();
    }
  }, 60_000);
});
