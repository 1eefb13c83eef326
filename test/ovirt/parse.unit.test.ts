import { describe, expect, it } from 'vitest';
import { ScorerError } from '../../src/errors';
import {
  faultReason,
  listItems,
  osIdentity,
  parseCluster,
  parseEvent,
  parseHost,
  parseInteger,
  parseVm,
  searchableHostName,
} from '../../src/ovirt/parse';
import { BadRecord } from '../../src/ovirt/rejections';

describe('osIdentity', () => {
  it.each([
    [
      'os.version when the engine fills it',
      { os: { type: 'rhel_9x64', version: { full_version: '9.4' } } },
      { type: 'rhel_9x64', version: '9.4' },
    ],
    [
      'guest agent distribution + full_version',
      { os: { type: 'rhel_8x64' }, guest_operating_system: { distribution: 'Red Hat Enterprise Linux', version: { full_version: '8.6' } } },
      { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' },
    ],
    [
      'guest full_version alone without a distribution',
      { os: { type: 'windows_2022' }, guest_operating_system: { family: 'Windows', version: { full_version: '10.0.20348' } } },
      { type: 'windows_2022', version: '10.0.20348' },
    ],
    [
      'os.version wins over the guest agent',
      { os: { type: 't', version: { full_version: 'a' } }, guest_operating_system: { distribution: 'D', version: { full_version: 'b' } } },
      { type: 't', version: 'a' },
    ],
    [
      'empty os.version falls back to the guest',
      { os: { type: 't', version: { full_version: '' } }, guest_operating_system: { version: { full_version: '7' } } },
      { type: 't', version: '7' },
    ],
    [
      'a guest with a distribution but no version gives ""',
      { os: { type: 't' }, guest_operating_system: { distribution: 'D' } },
      { type: 't', version: '' },
    ],
    ['no os at all', {}, { type: '', version: '' }],
    [
      'numbers where strings were expected',
      { os: { type: 7 }, guest_operating_system: { version: { full_version: 8 } } },
      { type: '7', version: '8' },
    ],
    ['objects where strings were expected', { os: { type: { x: 1 } } }, { type: '', version: '' }],
  ])('%s', (_name, vm, want) => {
    expect(osIdentity(vm)).toEqual(want);
  });
});

const V1 = '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b';
const H1 = '0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9';

describe('engine JSON', () => {
  it('accepts a list, a single object, {} and null as a collection', () => {
    expect(listItems({ vm: [{ id: 'a' }] }, 'vm')).toHaveLength(1);
    expect(listItems({ vm: { id: 'a' } }, 'vm')).toHaveLength(1);
    expect(listItems({}, 'vm')).toEqual([]);
    expect(listItems({ vm: null }, 'vm')).toEqual([]);
  });

  it('rejects what is not a collection as engine_protocol', () => {
    for (const bad of [undefined, 'html', [1], { vm: 'x' }]) {
      expect(() => listItems(bad, 'vm')).toThrowError(expect.objectContaining({ code: 'engine_protocol' }) as Error);
    }
  });

  it('reads integers sent as strings or numbers', () => {
    expect(parseInteger('2147483648', 'memory')).toBe(2147483648);
    expect(parseInteger(42, 'id')).toBe(42);
    expect(() => parseInteger('4.5', 'id')).toThrow(ScorerError);
    expect(() => parseInteger('9223372036854775807', 'id')).toThrow(/not an integer/);
  });

  it('parses a VM with missing fields without failing', () => {
    expect(parseVm({ id: V1 })).toEqual({ id: V1, hostId: undefined, os: { type: '', version: '' } });
    expect(parseVm({ id: V1, name: 'web', host: { id: H1, href: '/x' }, memory: '1024' }).hostId).toBe(H1);
  });

  it('trusts no id or string from the engine: UUIDs only (lower-cased), bounded OS fields, searchable host names', () => {
    expect(parseVm({ id: V1.toUpperCase() }).id).toBe(V1);
    expect(() => parseVm({ id: 'v1' })).toThrow(/vm id that is not a UUID$/);
    expect(() => parseVm({ id: V1, host: { id: 'h1' } })).toThrow(/vm host.id that is not a UUID/);
    expect(() => parseVm({ id: V1, os: { type: 'x'.repeat(257) } })).toThrow(/os.type longer than 256/);
    expect(() => parseHost({ id: '\u0000', name: 'h' })).toThrow(/not a UUID/);
    // An odd name keeps the host (it is joined on id) but never goes into an engine search.
    expect(parseHost({ id: H1, name: 'a b or name=*' }).name).toBe('a b or name=*');
    expect(searchableHostName('a b or name=*')).toBe(false);
    expect(searchableHostName('host-1.example.com')).toBe(true);
    expect(() => parseHost({ id: H1, name: 'bad\u0000name' })).toThrow(/control characters/);
    expect(() => parseEvent({ id: ['['], code: '1' })).toThrow(/event id that is not an integer$/);
  });

  it("reads a host's cluster and status; an odd one is left out and the host kept, for scoring", () => {
    expect(parseHost({ id: H1, name: 'h1', status: 'Non_Responsive', cluster: { id: V1.toUpperCase(), href: '/x' } })).toEqual({
      id: H1,
      name: 'h1',
      clusterId: V1,
      status: 'non_responsive',
    });
    expect(parseHost({ id: H1, name: 'h1' })).toEqual({ id: H1, name: 'h1', clusterId: undefined, status: '' });
    expect(parseHost({ id: H1, name: 'h1', status: 'up; rm -rf', cluster: { id: 'Default' } })).toEqual({
      id: H1,
      name: 'h1',
      clusterId: undefined,
      status: '',
    });
    expect(parseHost({ id: H1, name: 'h1', status: 'x'.repeat(65) }).status).toBe('');
  });

  it("reads a host's own ksm.enabled as 4.4 writes it; an odd or absent one is unknown, the host kept", () => {
    // A recorded 4.4.10 host said "false" while its cluster said "true": MOM had not turned KSM on.
    expect(parseHost({ id: H1, name: 'h1', ksm: { enabled: 'false', merge_across_nodes: 'true' } }).ksmEnabled).toBe(false);
    expect(parseHost({ id: H1, name: 'h1', ksm: { enabled: true } }).ksmEnabled).toBe(true);
    expect(parseHost({ id: H1, name: 'h1' }).ksmEnabled).toBeUndefined();
    expect(parseHost({ id: H1, name: 'h1', ksm: { enabled: 'yes' } }).ksmEnabled).toBeUndefined();
    expect(parseHost({ id: H1, name: 'h1', ksm: 'true' }).ksmEnabled).toBeUndefined();
  });

  it('a record it cannot use is a BadRecord naming its kind, a reason from a closed set and an example id', () => {
    const bad = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return err instanceof BadRecord ? [err.kind, err.reason, err.recordId] : err;
      }
      return undefined;
    };
    // What stood where an id belongs is kept as sent (up to 1 KiB), to be redacted before it is shortened for the log.
    expect(bad(() => parseVm('<html>'))).toEqual(['vm', 'not_an_object', '<html>']);
    expect(bad(() => parseVm({ name: 'x' }))).toEqual(['vm', 'no_id', '(none)']);
    expect(bad(() => parseVm({ id: 'v1' }))).toEqual(['vm', 'bad_id', 'v1']);
    expect(bad(() => parseVm({ id: V1, host: { id: 'Default' } }))).toEqual(['vm', 'bad_reference', V1]);
    expect(bad(() => parseVm({ id: V1, os: { type: 'x'.repeat(300) } }))).toEqual(['vm', 'bad_field', V1]);
    expect(bad(() => parseHost({ id: H1, name: 'a\u0000b' }))).toEqual(['host', 'bad_field', H1]);
    expect(bad(() => parseCluster({ id: V1, name: 'n'.repeat(300) }))).toEqual(['cluster', 'bad_field', V1]);
    expect(bad(() => parseEvent({ id: '375049', code: '30', vm: { id: 'v' } }))).toEqual(['event', 'bad_reference', '375049']);
    expect(bad(() => parseEvent({ id: 'x', code: '30' }))).toEqual(['event', 'bad_id', 'x']);
    expect(bad(() => parseEvent({ id: '375049', code: 'thirty' }))).toEqual(['event', 'bad_field', '375049']);
    // An event as 4.4 writes it: integers as strings, a user id that is not a UUID (not read).
    expect(parseEvent({ id: '375049', code: '30', time: 1666685876849, user: { id: 'a1b2' }, vm: { id: V1 } })).toEqual({
      id: 375049,
      code: 30,
      vmId: V1,
      hostId: undefined,
    });
  });

  it("reads a cluster's ksm.enabled sent as a string or a boolean, absent or odd as unknown", () => {
    expect(parseCluster({ id: V1, name: 'Default', ksm: { enabled: 'true', merge_across_nodes: 'true' } })).toEqual({
      id: V1,
      name: 'Default',
      ksmEnabled: true,
    });
    expect(parseCluster({ id: V1, name: 'c', ksm: { enabled: false } }).ksmEnabled).toBe(false);
    expect(parseCluster({ id: V1, name: 'c' }).ksmEnabled).toBeUndefined();
    // An odd one leaves the KSM fact unknown; the cluster and its name are kept.
    expect(parseCluster({ id: V1, name: 'c', ksm: { enabled: 'yes' } })).toEqual({ id: V1, name: 'c', ksmEnabled: undefined });
    expect(() => parseCluster({ id: 'Default' })).toThrow(/cluster id that is not a UUID/);
    expect(() => parseCluster({ id: V1, name: 'n'.repeat(300) })).toThrow(/cluster name longer than 256/);
  });

  it('rejects a VM or host without an id', () => {
    expect(() => parseVm({ name: 'x' })).toThrow(/without an id/);
    expect(() => parseHost({ id: '' })).toThrow(/without an id/);
    expect(() => parseHost('<html>')).toThrow(/not a JSON object/);
  });

  it('reads fault reasons in both wrappers and the SSO error form', () => {
    expect(faultReason({ reason: 'Operation Failed', detail: 'Entity not found' })).toBe('Operation Failed: Entity not found');
    expect(faultReason({ fault: { reason: 'Bad', detail: 'x' } })).toBe('Bad: x');
    expect(faultReason({ error_code: 'access_denied', error: 'Cannot authenticate' })).toBe('Cannot authenticate');
    expect(faultReason('<html/>')).toBeUndefined();
  });
});
