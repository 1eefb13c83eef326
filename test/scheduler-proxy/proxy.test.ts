/**
 * The oVirt scheduler proxy on the real service: the simulated engine behind
 * it, requests written as the engine writes them, answers read strictly and
 * compared with what a grpc-js client gets from ScoreHosts.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import { silentLogger } from '../../src/log';
import { UNIT_NAME } from '../../src/contract/scheduler-unit';
import { createProxyMethods } from '../../src/scheduler-proxy/handlers';
import { SchedulerProxyListener } from '../../src/scheduler-proxy/listener';
import { FaultCode } from '../../src/scheduler-proxy/xmlrpc-values';
import { scoreVmLikeScoreHosts } from '../../src/service';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { seededRandom } from '../../src/simulator/random';
import { type Scorer, simulatedSites, startScorer, startSimulator, unary } from '../helpers';
import { apacheCall, call, engineCostCall, expectFault, i4, NIL, parseResponse, plain, post, type Typed } from './wire';

const UNKNOWN = '00000000-0000-4000-8000-00000000beef';
const MiB = 2 ** 20;
/** The engine's custom-properties syntax (SimpleCustomPropertiesUtil: key=regex(;key=regex)*;?). */
const PROPERTIES_SYNTAX = /^[a-zA-Z0-9_]+=[^;]+(;[a-zA-Z0-9_]+=[^;]+)*;?$/;

const grpcScores = (s: Scorer, vmId: string, hostIds: string[]) =>
  unary<object, ScoreHostsResponse__Output>(s.client, 'ScoreHosts', { vm_id: vmId, host_ids: hostIds });

/** Checks the answer's envelope strictly and returns its fields. */
function envelope(t: Typed): { code: number; result: Typed[]; pluginErrors: Record<string, string[]>; errors: string[] } {
  if (t.type !== 'struct') throw new Error(`answer is ${t.type}, not a struct`);
  expect([...t.value.keys()].sort()).toEqual(['errors', 'plugin_errors', 'result', 'result_code']);
  const code = t.value.get('result_code')!;
  const result = t.value.get('result')!;
  expect(['int', 'i4']).toContain(code.type);
  expect(result.type).toBe('array');
  const pluginErrors = plain(t.value.get('plugin_errors')!) as Record<string, string[]>;
  for (const msgs of Object.values(pluginErrors)) for (const m of msgs) expect(typeof m).toBe('string');
  return { code: code.value as number, result: result.value as Typed[], pluginErrors, errors: plain(t.value.get('errors')!) as string[] };
}

/** Score entries [hostId, weight, unit], the weight typed <int> or <i4> as the engine's (Integer) cast needs. */
function entries(result: Typed[]): [string, number, string][] {
  return result.map((e) => {
    if (e.type !== 'array' || e.value.length !== 3) throw new Error('score entry is not [hostId, weight, unit]');
    const [id, w, unit] = e.value as [Typed, Typed, Typed];
    expect(id.type).toBe('string');
    expect(['int', 'i4']).toContain(w.type);
    expect(unit.type).toBe('string');
    return [id.value as string, w.value as number, unit.value as string];
  });
}

async function costs(port: number, vmId: string, hostIds: string[], units?: [string, number][]) {
  return envelope(await call(port, engineCostCall(vmId, hostIds, units)));
}

function shuffled<T>(xs: readonly T[], random: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

describe('runCostFunctions weights are round(10 x (100 - score)) of gRPC ScoreHosts, on random inventories', () => {
  for (const [hosts, vms, seed] of [
    [5, 80, 3],
    [25, 900, 17],
    [60, 2_500, 42],
  ] as const) {
    describe(`${hosts} hosts, ${vms} VMs, seed ${seed}`, () => {
      let sim: SimulatedEngine;
      let scorer: Scorer;

      beforeAll(async () => {
        sim = await startSimulator({ hosts, vms, seed });
        scorer = await startScorer(sim, { KSM_SCORER_OVIRT_PROXY_LISTEN: '127.0.0.1:0' });
      });
      afterAll(async () => {
        await scorer.close();
        await sim.stop();
      });

      it('for running VMs (their own host included, where they must not count) and stopped ones, any host subset and order', async () => {
        const random = seededRandom(seed * 7 + 1);
        const allHosts = [...sim.inventory.hosts.keys()];
        const allVms = [...sim.inventory.vms.values()];
        let ownHostAsked = 0;
        for (let i = 0; i < 40; i++) {
          const vm = allVms[Math.floor(random() * allVms.length)]!;
          const asked = shuffled(allHosts, random).slice(0, 1 + Math.floor(random() * allHosts.length));
          if (vm.hostId !== undefined && !asked.includes(vm.hostId)) asked.splice(Math.floor(random() * asked.length), 0, vm.hostId);
          if (random() < 0.3) asked.push(UNKNOWN);
          if (vm.hostId !== undefined) ownHostAsked++;

          const grpc = await grpcScores(scorer, vm.id, asked);
          const answer = await costs(scorer.service.ovirtProxyPort!, vm.id, asked);
          expect(answer.code).toBe(0);
          expect(answer.pluginErrors).toEqual({});
          expect(entries(answer.result)).toEqual(grpc.scores.map((s, k) => [asked[k], Math.round(10 * (100 - s.score)), UNIT_NAME]));
        }
        expect(ownHostAsked).toBeGreaterThan(10);
      });
    });
  }
});

describe('the oVirt scheduler proxy (XML-RPC)', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer;
  let port: number;
  let hostIds: string[];
  let vmId: string;

  beforeAll(async () => {
    sim = await startSimulator({ hosts: 10, vms: 300, seed: 5 });
    scorer = await startScorer(sim, {
      KSM_SCORER_OVIRT_PROXY_LISTEN: '127.0.0.1:0',
      KSM_SCORER_MAX_HOSTS: '50',
      KSM_SCORER_OVIRT_PROXY_MAX_BODY_MB: '0.0625',
    });
    port = scorer.service.ovirtProxyPort!;
    hostIds = [...sim.inventory.hosts.keys()];
    vmId = [...sim.inventory.vms.values()].find((v) => v.hostId !== undefined)!.id;
  });
  afterAll(async () => {
    await scorer.close();
    await sim.stop();
  });

  const expectHealthy = async () => expect(plain(await call(port, apacheCall('discover', [])))).toHaveProperty('scores');

  it('discover advertises one weight unit, in the exact shape the engine accepts', async () => {
    const t = await call(port, apacheCall('discover', []));
    if (t.type !== 'struct') throw new Error('not a struct');
    expect([...t.value.keys()].sort()).toEqual(['balance', 'filters', 'scores']);
    expect(plain(t)).toMatchObject({ filters: {}, balance: {} });
    const scores = t.value.get('scores')!;
    if (scores.type !== 'struct') throw new Error('scores is not a struct');
    expect([...scores.value.keys()]).toEqual([UNIT_NAME]);
    const unit = scores.value.get(UNIT_NAME)!;
    if (unit.type !== 'array') throw new Error('unit is not an array');
    const [description, regex] = unit.value;
    expect(unit.value).toHaveLength(2);
    expect(description).toMatchObject({ type: 'string' });
    expect((description!.value as string).length).toBeGreaterThan(20);
    expect(regex).toMatchObject({ type: 'string' });
    expect(regex!.value === '' || PROPERTIES_SYNTAX.test(regex!.value as string)).toBe(true);
  });

  it('the factor is not applied: the engine applies it to the per-unit form', async () => {
    const one = await costs(port, vmId, hostIds, [[UNIT_NAME, 1]]);
    const nine = await costs(port, vmId, hostIds, [[UNIT_NAME, 9]]);
    expect(entries(nine.result)).toEqual(entries(one.result));
    for (const [, w] of entries(one.result)) expect(w >= 0 && w <= 1000).toBe(true);
  });

  it('answers every host once, in the order asked, the id as sent; an unknown host gets the worst weight', async () => {
    const asked = [hostIds[2]!, UNKNOWN, hostIds[0]!, hostIds[2]!, UNKNOWN];
    const answer = entries((await costs(port, vmId, asked)).result);
    expect(answer.map((e) => e[0])).toEqual([hostIds[2], UNKNOWN, hostIds[0]]);
    expect(answer[1]![1]).toBe(1000);
    const upper = hostIds[1]!.toUpperCase();
    expect(entries((await costs(port, vmId, [upper])).result)[0]![0]).toBe(upper);
  });

  it('one host id in 256 letter-case spellings is one host: answered once, as first sent (issue 19); by gRPC once too, in lower case', async () => {
    const id = hostIds.find((h) => (h.match(/[a-f]/g) ?? []).length >= 8)!;
    const letters = id
      .split('')
      .flatMap((c, i) => (/[a-f]/.test(c) ? [i] : []))
      .slice(0, 8);
    const spellings = Array.from({ length: 256 }, (_, mask) =>
      id
        .split('')
        .map((c, i) => (letters.indexOf(i) >= 0 && mask & (1 << letters.indexOf(i)) ? c.toUpperCase() : c))
        .join(''),
    );
    expect(new Set(spellings).size).toBe(256);
    const asked = [spellings[255]!, ...spellings, UNKNOWN, UNKNOWN.toUpperCase()];
    const answer = entries((await costs(port, vmId, asked)).result);
    expect(answer.map((e) => e[0])).toEqual([spellings[255], UNKNOWN]);
    // gRPC: the same, with the id in lower case; unknown ids too are answered once.
    // (KSM_SCORER_MAX_HOSTS, 50 here, counts the ids sent, repeats included.)
    const grpc = await grpcScores(scorer, vmId, [spellings[255]!, spellings[0]!, UNKNOWN, id.toUpperCase(), UNKNOWN.toUpperCase(), id]);
    expect(grpc.scores.map((h) => [h.host_id, h.found])).toEqual([
      [id, true],
      [UNKNOWN, false],
    ]);
    expect(grpc.scores[0]!.score).toBe((await grpcScores(scorer, vmId, [id])).scores[0]!.score);
  });

  it('makes no engine request when the inventory holds the answer', async () => {
    await costs(port, vmId, hostIds);
    const before = sim.apiRequests().length;
    for (let i = 0; i < 20; i++) await costs(port, vmId, hostIds);
    expect(sim.apiRequests().length).toBe(before);
  });

  it('an unknown unit: result_code 1 and a plugin error for it, the known unit still scored', async () => {
    const answer = await costs(port, vmId, hostIds.slice(0, 3), [
      ['no_such_unit', 2],
      [UNIT_NAME, 1],
    ]);
    expect(answer.code).toBe(1);
    expect(Object.keys(answer.pluginErrors)).toEqual(['no_such_unit']);
    expect(answer.pluginErrors.no_such_unit![0]).toMatch(/no policy unit "no_such_unit"/);
    expect(entries(answer.result).map((e) => e[0])).toEqual(hostIds.slice(0, 3));
    const onlyUnknown = await costs(port, vmId, hostIds, [['no_such_unit', 1]]);
    expect(onlyUnknown).toMatchObject({ code: 1, result: [] });
  });

  it('a VM the engine does not have: result_code 1, a plugin error naming it, an empty result (not a fault)', async () => {
    const answer = await costs(port, UNKNOWN, hostIds);
    expect(answer.code).toBe(1);
    expect(answer.result).toEqual([]);
    expect(answer.pluginErrors[UNIT_NAME]![0]).toContain(UNKNOWN);
  });

  it('no hosts asked: an empty result', async () => {
    expect(await costs(port, vmId, [])).toMatchObject({ code: 0, result: [] });
  });

  it('runFilters passes every host; runLoadBalancing asks for no migration', async () => {
    const filtered = envelope(await call(port, apacheCall('runFilters', [['some_filter'], hostIds, vmId, {}])));
    expect(filtered.code).toBe(0);
    expect(filtered.result.map((t) => t.value)).toEqual(hostIds);
    expect(envelope(await call(port, apacheCall('runFilters', [[], hostIds, vmId, NIL]))).code).toBe(0);
    const balance = envelope(await call(port, apacheCall('runLoadBalancing', ['some_balance', hostIds, { k: 'v' }])));
    expect(balance.code).toBe(0);
    expect(balance.result).toEqual([
      { type: 'string', value: '' },
      { type: 'array', value: [] },
    ]);
  });

  it('introspection: system.listMethods, methodHelp, methodSignature', async () => {
    expect(plain(await call(port, apacheCall('system.listMethods', [])))).toEqual([
      'discover',
      'runCostFunctions',
      'runFilters',
      'runLoadBalancing',
      'system.listMethods',
      'system.methodHelp',
      'system.methodSignature',
    ]);
    expect(plain(await call(port, apacheCall('system.methodHelp', ['runCostFunctions'])))).toMatch(/lower is better/);
    expect(plain(await call(port, apacheCall('system.methodSignature', ['runCostFunctions'])))).toEqual([
      ['struct', 'array', 'array', 'string', 'struct'],
    ]);
    await expectFault(port, apacheCall('system.methodHelp', ['nope']), FaultCode.methodNotFound);
  });

  describe('bad input gets a fault, and the listener stays healthy', () => {
    const bad: [string, () => string | Buffer, number, RegExp][] = [
      ['not XML', () => 'GET / HTTP/1.0', FaultCode.notWellFormed, /not well-formed/],
      ['empty body', () => '', FaultCode.notWellFormed, /root/],
      ['truncated call', () => engineCostCall(vmId, hostIds).slice(0, 300), FaultCode.notWellFormed, /not well-formed/],
      [
        'entity expansion (billion laughs)',
        () =>
          `<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">${Array.from({ length: 9 }, (_, i) => `<!ENTITY ${'b'.repeat(i + 1)} "${(i === 0 ? '&a;' : `&${'b'.repeat(i)};`).repeat(10)}">`).join('')}]><methodCall><methodName>&bbbbbbbbb;</methodName></methodCall>`,
        FaultCode.notWellFormed,
        /DOCTYPE/,
      ],
      ['unknown method', () => apacheCall('runEverything', []), FaultCode.methodNotFound, /no method "runEverything"/],
      [
        'too few parameters',
        () => apacheCall('runCostFunctions', [[], hostIds, vmId]),
        FaultCode.invalidParams,
        /takes 4 parameters, got 3/,
      ],
      ['too many parameters', () => apacheCall('discover', ['x']), FaultCode.invalidParams, /takes 0 parameters, got 1/],
      [
        'units not pairs',
        () => apacheCall('runCostFunctions', [[UNIT_NAME], hostIds, vmId, {}]),
        FaultCode.invalidParams,
        /units\[0\] must be a \[name, factor\] pair/,
      ],
      [
        'factor a string',
        () => apacheCall('runCostFunctions', [[[UNIT_NAME, '1']], hostIds, vmId, {}]),
        FaultCode.invalidParams,
        /units\[0\] factor must be an int, got a string$/,
      ],
      [
        'unit name an int',
        () => apacheCall('runCostFunctions', [[[i4(1), i4(1)]], hostIds, vmId, {}]),
        FaultCode.invalidParams,
        /units\[0\] name must be a string, got an int$/,
      ],
      [
        'host ids not an array',
        () => apacheCall('runCostFunctions', [[[UNIT_NAME, i4(1)]], hostIds[0]!, vmId, {}]),
        FaultCode.invalidParams,
        /host ids must be an array, got a string/,
      ],
      [
        'a host id an int',
        () => apacheCall('runCostFunctions', [[[UNIT_NAME, i4(1)]], [hostIds[0]!, i4(3)], vmId, {}]),
        FaultCode.invalidParams,
        /host ids\[1\] must be a string, got an int/,
      ],
      [
        'vm id an array',
        () => apacheCall('runCostFunctions', [[[UNIT_NAME, i4(1)]], hostIds, [vmId], {}]),
        FaultCode.invalidParams,
        /vm id must be a string, got an array/,
      ],
      [
        'properties an array',
        () => apacheCall('runCostFunctions', [[[UNIT_NAME, i4(1)]], hostIds, vmId, []]),
        FaultCode.invalidParams,
        /properties must be a struct/,
      ],
      ['a host id not a UUID', () => engineCostCall(vmId, [hostIds[0]!, 'host-1']), FaultCode.invalidParams, /host_ids\[1\]: not a UUID/],
      ['the vm id not a UUID', () => engineCostCall('my-vm', hostIds), FaultCode.invalidParams, /vm_id: not a UUID/],
      [
        'more hosts than KSM_SCORER_MAX_HOSTS',
        () =>
          engineCostCall(
            vmId,
            Array.from({ length: 51 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`),
          ),
        FaultCode.invalidParams,
        /more than the maximum of 50/,
      ],
      [
        'runLoadBalancing name an int',
        () => apacheCall('runLoadBalancing', [i4(1), hostIds, {}]),
        FaultCode.invalidParams,
        /balance name must be a string/,
      ],
    ];
    it.each(bad)('%s', async (_name, body, code, message) => {
      await expectFault(port, body(), code, message);
      await expectHealthy();
    });

    it('a compressed body is refused (the engine never sends one)', async () => {
      const { response } = await post(port, apacheCall('discover', []), { 'content-encoding': 'gzip' });
      expect(response).toMatchObject({ fault: { code: FaultCode.transport } });
      await expectHealthy();
    });

    it('a GET is not XML-RPC: 405, allow POST', async () => {
      const { request } = await import('undici');
      const res = await request(`http://127.0.0.1:${port}/`);
      expect(res.statusCode).toBe(405);
      expect(res.headers.allow).toBe('POST');
      await res.body.text();
      await expectHealthy();
    });

    it('hundreds of bad calls at once, then a good one', async () => {
      const bodies = Array.from({ length: 300 }, (_, i) =>
        i % 3 === 0 ? `<methodCall>${'<x>'.repeat(i)}` : i % 3 === 1 ? apacheCall('nope', []) : Buffer.from([0xff, 0xfe, i & 0xff]),
      );
      const faults = await Promise.all(bodies.map((b) => expectFault(port, b)));
      expect(faults).toHaveLength(300);
      await expectHealthy();
      expect(entries((await costs(port, vmId, hostIds)).result)).toHaveLength(hostIds.length);
    });

    it('a body declared larger than the limit is refused before any of it is read', async () => {
      const conn = await open(port);
      conn.socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: ${100 * 2 ** 20}\r\n\r\n`);
      const res = await conn.response;
      expect(res.fault).toMatchObject({ code: FaultCode.transport });
      expect(res.fault!.message).toMatch(/larger than the limit of 65536 bytes/);
      conn.socket.destroy();
      await expectHealthy();
    });

    it('an endless chunked body is refused once it passes the limit, while it is still being sent', async () => {
      const conn = await open(port);
      conn.socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n');
      const chunk = `<methodCall><methodName>discover</methodName><params><param><value><array><data>${'<value>x</value>'.repeat(1000)}`;
      let sent = 0;
      let answered = false;
      void conn.response.then(
        () => (answered = true),
        () => (answered = true),
      );
      while (!answered && sent < 16 * 2 ** 20) {
        const piece = sent === 0 ? chunk : '<value>x</value>'.repeat(1000);
        conn.socket.write(`${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`);
        sent += piece.length;
        await new Promise((r) => setTimeout(r, 2));
      }
      const res = await conn.response;
      expect(res.fault).toMatchObject({ code: FaultCode.transport });
      expect(res.fault!.message).toMatch(/larger than the limit of 65536 bytes/);
      // Answered long before the sender stopped by itself; then the connection is closed on it.
      expect(sent).toBeLessThan(16 * 2 ** 20);
      await conn.closed;
      await expectHealthy();
    });

    it('a caller that goes away in the middle of a body', async () => {
      const conn = await open(port);
      conn.socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n${engineCostCall(vmId, hostIds).slice(0, 200)}`);
      await new Promise((r) => setTimeout(r, 50));
      conn.socket.destroy();
      await expectHealthy();
    });
  });
});

describe('caller text in faults and log lines', () => {
  const site = simulatedSites();
  afterEach(() => site.stop());

  it('caller text is not echoed unbounded into faults and log lines', async () => {
    const sim = await site.simulator({ hosts: 8, vms: 120, seed: 5 });
    const scorer = await site.scorerOn(sim, { OVIRT_MAX_ANSWER_MB: '1', KSM_SCORER_OVIRT_PROXY_LISTEN: '127.0.0.1:0' });
    const port = scorer.service.ovirtProxyPort!;
    const fault = await expectFault(port, apacheCall('system.methodHelp', ['B'.repeat(3 * MiB)]));
    expect(fault.message.length).toBeLessThan(4_096);
    expect(Math.max(...site.logs.map((l) => l.length))).toBeLessThan(4_096);
  });
});

describe('a body dripped slowly', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer;
  let listener: SchedulerProxyListener;
  let port: number;

  beforeAll(async () => {
    sim = await startSimulator();
    scorer = await startScorer(sim);
    // The service's own listener with the real methods, but a body timeout short enough for a test.
    const methods = createProxyMethods({
      scoreVm: scoreVmLikeScoreHosts(scorer.service.inventory.served, loadConfig({}).limits),
      logger: silentLogger,
    });
    listener = new SchedulerProxyListener({ methods, logger: silentLogger, maxBodyBytes: 2 ** 20, bodyTimeoutMs: 300 });
    port = await listener.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await listener.close(1_000);
    await scorer.close();
    await sim.stop();
  });

  it('times out with a fault, the connection is closed, and the next caller is served', async () => {
    const conn = await open(port);
    const body = apacheCall('discover', []);
    conn.socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
    let stop = false;
    void (async () => {
      for (let i = 0; i < body.length && !stop && !conn.socket.destroyed; i++) {
        conn.socket.write(body[i]!);
        await new Promise((r) => setTimeout(r, 40));
      }
    })();
    const res = await conn.response;
    stop = true;
    expect(res.fault).toMatchObject({ code: FaultCode.transport });
    expect(res.fault!.message).toMatch(/did not arrive within 0.3 s/);
    await conn.closed;
    expect(plain(await call(port, body))).toHaveProperty('scores');
  });
});

/** A raw connection: the first HTTP response on it, parsed strictly, and when it closes. */
async function open(
  port: number,
): Promise<{ socket: Socket; response: Promise<{ fault?: { code: number; message: string } }>; closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => {});
  let buf = Buffer.alloc(0);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const response = new Promise<{ fault?: { code: number; message: string } }>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString();
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
      if (buf.length < end + 4 + length) return;
      expect(head).toMatch(/^HTTP\/1\.1 200/);
      const r = parseResponse(buf.subarray(end + 4, end + 4 + length).toString());
      resolve('fault' in r ? { fault: r.fault } : {});
    });
    void closed.then(() => reject(new Error(`connection closed before a response: ${JSON.stringify(buf.toString().slice(0, 200))}`)));
  });
  response.catch(() => {});
  return { socket, response, closed };
}
