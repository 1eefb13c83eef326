/** Hot-path counters and histograms render as prom-client's do: cumulative buckets, le boundaries inclusive, both formats. */
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics/metrics';
import { valueOf } from './scrape';

describe('hot metrics', () => {
  it('a histogram counts a value equal to a bound in that bucket, cumulatively, with sum and count', async () => {
    const metrics = new Metrics();
    const h = metrics.hotHistogram('t_seconds', 'test', ['m'], [0.1, 1, 0.01]);
    const a = h.labels({ m: 'a' });
    for (const v of [0.005, 0.01, 0.5, 1, 7]) a.observe(v);
    h.labels({ m: 'b' }).observe(0.2);
    const { body } = await metrics.render(undefined);
    expect(['0.01', '0.1', '1', '+Inf'].map((le) => valueOf(body, 't_seconds_bucket', { m: 'a', le }))).toEqual([2, 2, 4, 5]);
    expect(valueOf(body, 't_seconds_sum', { m: 'a' })).toBeCloseTo(8.515, 10);
    expect(valueOf(body, 't_seconds_count', { m: 'a' })).toBe(5);
    expect(valueOf(body, 't_seconds_bucket', { m: 'b', le: '0.1' })).toBe(0);
    expect(valueOf(body, 't_seconds_bucket', { m: 'b', le: '1' })).toBe(1);
  });

  it('a counter series is one per label set, however often it is resolved', async () => {
    const metrics = new Metrics();
    const c = metrics.hotCounter('t_total', 'test', ['code']);
    c.labels({ code: 'OK' }).inc();
    c.labels({ code: 'OK' }).inc();
    c.labels({ code: 'NOT_FOUND' }).inc();
    const prom = (await metrics.render(undefined)).body;
    expect(valueOf(prom, 't_total', { code: 'OK' })).toBe(2);
    expect(valueOf(prom, 't_total', { code: 'NOT_FOUND' })).toBe(1);
    expect(prom).toMatch(/^# TYPE t_total counter$/m);
    const om = (await metrics.render('application/openmetrics-text')).body;
    expect(om).toMatch(/^# TYPE t counter$/m);
    expect(om).toMatch(/^t_total\{code="OK"\} 2$/m);
    expect((await metrics.render(undefined)).body).toBe(prom);
  });
});
