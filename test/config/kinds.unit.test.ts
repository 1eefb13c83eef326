import { describe, expect, it } from 'vitest';
import { formatHostPort, parseHostPort } from '../../src/config/kinds';

describe('HOST:PORT, parsed once for every listener and the client commands', () => {
  it('hands {host, port} over, IPv6 without its brackets, and writes it back as given', () => {
    for (const [raw, host, port] of [
      ['0.0.0.0:50051', '0.0.0.0', 50051],
      ['[::1]:0', '::1', 0],
      ['[::]:9464', '::', 9464],
      ['localhost:18781', 'localhost', 18781],
      ['scorer.example.com:1', 'scorer.example.com', 1],
    ] as const) {
      expect(parseHostPort(raw), raw).toEqual({ value: { host, port } });
      expect(formatHostPort({ host, port })).toBe(raw);
    }
    expect(formatHostPort({ host: '::', port: 0 }, 40000)).toBe('[::]:40000');
  });

  it('refuses what cannot be bound or dialled, naming HOST:PORT; port 0 only where it binds any free port', () => {
    for (const bad of ['256.1.1.1:0', '1.2.3:80', '[::g]:1', 'host:99999', 'host', ':80', 'a b:1', '', 'http://h:1']) {
      expect(parseHostPort(bad), bad).toEqual({
        problem: `must be HOST:PORT, e.g. 0.0.0.0:50051 or [::1]:50051, got ${JSON.stringify(bad)}`,
      });
    }
    expect(parseHostPort('127.0.0.1:0', 1, '127.0.0.1:50051')).toEqual({
      problem: 'must be HOST:PORT, e.g. 127.0.0.1:50051 or [::1]:50051, got "127.0.0.1:0"',
    });
  });
});
