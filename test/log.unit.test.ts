/** The pino logger behind the Logger interface: line shape, levels, error fields, redaction, grpc-js's lines. */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ScorerError } from '../src/errors';
import { createLogger, routeGrpcLogs } from '../src/log';

const capture = (level: Parameters<typeof createLogger>[0]) => {
  const lines: string[] = [];
  return {
    logger: createLogger(level, { write: (l) => lines.push(l) }),
    lines,
    parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
};

describe('logger', () => {
  it('writes one JSON object per line: level name, ISO time, fields, msg', () => {
    const { logger, lines, parsed } = capture('info');
    logger.info('inventory refreshed', { generation: 3, hosts: 5 });
    logger.warn('plain');
    expect(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    const [first, second] = parsed();
    expect(first).toMatchObject({ level: 'info', msg: 'inventory refreshed', generation: 3, hosts: 5, pid: process.pid });
    expect(new Date(String(first!.time)).toISOString()).toBe(first!.time);
    expect(second).toMatchObject({ level: 'warn', msg: 'plain' });
  });

  it('drops lines below its level', () => {
    const { logger, parsed } = capture('warn');
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    expect(parsed().map((l) => l.level)).toEqual(['warn', 'error']);
  });

  it('an error in `err` is its name, code, message, endpoint, status and cause: no stack', () => {
    const { logger, parsed } = capture('info');
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    logger.warn('engine sync failed', {
      err: new ScorerError('engine_unreachable', 'engine unreachable on GET /hosts: ECONNREFUSED', {
        endpoint: 'GET /hosts',
        status: 503,
        cause,
      }),
    });
    expect(parsed()[0]!.err).toEqual({
      name: 'ScorerError',
      code: 'engine_unreachable',
      message: 'engine unreachable on GET /hosts: ECONNREFUSED',
      endpoint: 'GET /hosts',
      status: 503,
      cause: { name: 'Error', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1' },
    });
    expect(JSON.stringify(parsed())).not.toContain('    at ');
  });

  it('redacts fields that could carry a password, a token or an Authorization header, at any of three levels', () => {
    const { logger, lines } = capture('debug');
    logger.debug('oops', {
      password: 'pw-1',
      token: 'tok-1',
      request: { headers: { authorization: 'Bearer tok-2', Cookie: 'c-1' }, access_token: 'tok-3' },
      config: { engine: { password: 'pw-2' } },
      answer: { refresh_token: 'tok-4' },
    });
    const text = lines.join('');
    for (const secret of ['pw-1', 'pw-2', 'tok-1', 'tok-2', 'tok-3', 'tok-4', 'c-1']) expect(text).not.toContain(secret);
    expect(JSON.parse(text)).toMatchObject({ password: '<redacted>', request: { headers: { authorization: '<redacted>' } } });
  });

  it("grpc-js's own lines become JSON lines of the logger", async () => {
    const { logger, parsed } = capture('info');
    routeGrpcLogs(logger, 'info');
    const first = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) =>
      first.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const second = new grpc.Server();
    await expect(
      new Promise((resolve, reject) =>
        second.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
      ),
    ).rejects.toThrow(/No address added/);
    first.forceShutdown();
    second.forceShutdown();
    expect(parsed()).toContainEqual(
      expect.objectContaining({
        level: 'error',
        component: 'grpc-js',
        msg: expect.stringMatching(/^No address added out of total 1 resolved/),
      }),
    );
  });
});
