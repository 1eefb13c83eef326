/** The decode worker: large answers go to it, and it never takes a core from the threads answering calls. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonDecoder, VM_FIELDS } from '../../src/ovirt/decoder';

/** The nice value of each thread of this process (Linux: /proc/self/task). */
function threadNices(): number[] {
  return readdirSync('/proc/self/task').map((t) => {
    const stat = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

const page = (n: number) => ({
  vm: Array.from({ length: n }, (_, i) => ({
    id: `${String(i).padStart(8, '0')}-0000-4000-8000-000000000000`,
    name: `vm-${i}`,
    os: { type: 'rhel_8x64' },
    link: [{ href: '/x'.repeat(50) }],
  })),
});

describe('JsonDecoder', () => {
  let decoder: JsonDecoder;
  afterEach(async () => decoder.close());

  it.runIf(existsSync('/proc/self/task'))(
    'decodes a large page in a thread of lower priority (nice 19), this thread untouched',
    async () => {
      decoder = new JsonDecoder(64 * 2 ** 20);
      const before = threadNices();
      const body = (await decoder.decode(gzipSync(Buffer.from(JSON.stringify(page(2_000)))), true, {
        listKey: 'vm',
        fields: VM_FIELDS,
      })) as { vm: unknown[] };
      expect(body.vm).toHaveLength(2_000);
      expect(body.vm[0]).toEqual({ id: '00000000-0000-4000-8000-000000000000', os: { type: 'rhel_8x64' } });
      expect(before.filter((n) => n === 19)).toHaveLength(0);
      expect(threadNices().filter((n) => n === 19)).toHaveLength(1);
      expect(threadNices()[0]).toBe(0); // the main thread, first in the list
    },
  );

  it('a gzip page whose trailer lies about its size gains nothing: at most the inline limit is inflated, and a wrong trailer is not gzip', async () => {
    decoder = new JsonDecoder(2 ** 20);
    // Claims 10 bytes, inflates to 8 MiB: inline stops at 64 KiB; the trailer does not match, so it is no answer at all.
    const bomb = gzipSync(Buffer.alloc(8 * 2 ** 20, 0x20));
    bomb.writeUInt32LE(10, bomb.length - 4);
    const outcome = await decoder.decode(bomb, true, { listKey: 'vm', fields: VM_FIELDS }).catch((err: Error) => err);
    expect(outcome === undefined || (outcome instanceof Error && /larger than 1048576 bytes/.test(outcome.message))).toBe(true);
    // Told the truth, the same 8 MiB goes to the worker and stops at OVIRT_MAX_ANSWER_MB (1 MiB here).
    await expect(decoder.decode(gzipSync(Buffer.alloc(8 * 2 ** 20, 0x20)), true, { listKey: 'vm', fields: VM_FIELDS })).rejects.toThrow(
      /larger than 1048576 bytes/,
    );
  });

  it('a long list comes back a part at a time (500 items each), whole and in order, as do lists of one part', async () => {
    decoder = new JsonDecoder(64 * 2 ** 20);
    const ids = (body: unknown) => (body as { vm: { id: string }[] }).vm.map((vm) => vm.id);
    const want = (n: number) => page(n).vm.map((vm) => vm.id);
    // 1,201 = 500 + 500 + 201: three parts.
    const long = await decoder.decode(Buffer.from(JSON.stringify(page(1_201))), false, { listKey: 'vm', fields: VM_FIELDS });
    expect(ids(long)).toEqual(want(1_201));
    for (const n of [500, 499, 501, 1_000]) {
      const body = await decoder.decode(gzipSync(Buffer.from(JSON.stringify(page(n)))), true, { listKey: 'vm', fields: VM_FIELDS });
      expect(ids(body)).toEqual(want(n));
    }
    // Two long lists at once do not mix their parts.
    const [a, b] = await Promise.all([
      decoder.decode(Buffer.from(JSON.stringify(page(1_300))), false, { listKey: 'vm', fields: VM_FIELDS }),
      decoder.decode(Buffer.from(JSON.stringify({ vm: page(900).vm.reverse() })), false, { listKey: 'vm', fields: VM_FIELDS }),
    ]);
    expect(ids(a)).toEqual(want(1_300));
    expect(ids(b)).toEqual(want(900).reverse());
  });

  it('holds one parsed answer at a time: an answer that comes while a long list is sent is parsed after its last part', async () => {
    // Found from outside: the decode thread parsed every queued answer while it waited to send the
    // parts of the first, so ten 16 MB answers at once ran its bounded heap out of memory.
    decoder = new JsonDecoder(64 * 2 ** 20);
    const done: string[] = [];
    const long = decoder.decode(Buffer.from(JSON.stringify(page(2_000))), false, { listKey: 'vm', fields: VM_FIELDS }); // 4 parts
    const short = decoder.decode(Buffer.from(JSON.stringify(page(600))), false, { listKey: 'vm', fields: VM_FIELDS }); // 2 parts
    await Promise.all([long.then(() => done.push('long')), short.then(() => done.push('short'))]);
    expect(done).toEqual(['long', 'short']);
    expect(((await short) as { vm: unknown[] }).vm).toHaveLength(600);
  });

  it('the decode thread gone in the middle of long lists: each caller gets its list whole or a clear error, none is left waiting, the next decode works', async () => {
    decoder = new JsonDecoder(64 * 2 ** 20);
    const long = () => decoder.decode(Buffer.from(JSON.stringify(page(20_000))), false, { listKey: 'vm', fields: VM_FIELDS });
    const inFlight = [long(), long(), long()]; // decoded one after the other: the last cannot be done in 5 ms
    await new Promise((resolve) => setTimeout(resolve, 5));
    await decoder.close();
    const outcomes = await Promise.allSettled(inFlight);
    const seen = outcomes.map((o) =>
      o.status === 'fulfilled'
        ? `whole: ${(o.value as { vm: unknown[] }).vm.length === 20_000}`
        : `error: ${/JSON decoder exited/.test(String(o.reason))}`,
    );
    for (const outcome of seen) expect(['whole: true', 'error: true']).toContain(outcome);
    expect(seen.at(-1)).toBe('error: true');
    expect(((await long()) as { vm: unknown[] }).vm).toHaveLength(20_000);
  });
});
