/** The XML-RPC codec: the engine's and Python's request forms, every kind of bad body, and what the writer emits. */
import { describe, expect, it } from 'vitest';
import { MethodCallReader } from '../../src/scheduler-proxy/xmlrpc-reader';
import { FaultCode, type MethodCall, XmlRpcFault, XmlRpcOther } from '../../src/scheduler-proxy/xmlrpc-values';
import { writeFault, writeResponse } from '../../src/scheduler-proxy/xmlrpc-writer';
import { apacheCall, engineCostCall, i4, NIL, parseResponse, plain } from './wire';

const HOST_A = '8a1c3f64-5717-4562-b3fc-2c963f66afa6';
const HOST_B = 'b1425627-532e-45e7-ae7d-9a39f1931b71';
const VM = '1e384c28-7520-46a4-8fbc-8eab5f8cd249';

function read(body: string, chunkSize = Infinity): MethodCall {
  const reader = new MethodCallReader();
  const bytes = Buffer.from(body, 'utf8');
  for (let i = 0; i < bytes.length; i += Math.min(chunkSize, bytes.length)) reader.write(bytes.subarray(i, i + chunkSize));
  return reader.end();
}

function fault(body: string | Buffer, limits?: { maxDepth: number; maxElements: number }): XmlRpcFault {
  const reader = new MethodCallReader(limits);
  let thrown: unknown;
  try {
    reader.write(typeof body === 'string' ? Buffer.from(body) : body);
    reader.end();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'a fault').toBeInstanceOf(XmlRpcFault);
  return thrown as XmlRpcFault;
}

const wrap = (value: string) =>
  `<?xml version="1.0"?><methodCall><methodName>m</methodName><params><param><value>${value}</value></param></params></methodCall>`;

describe('reading a methodCall', () => {
  it('reads runCostFunctions exactly as the engine (Apache XML-RPC 3.1.3, extensions on) writes it', () => {
    const body = engineCostCall(
      VM,
      [HOST_A, HOST_B],
      [
        ['ksm_same_os_score', 3],
        ['other_unit', 1],
      ],
    );
    expect(body).toContain('<value>ksm_same_os_score</value><value><i4>3</i4></value>');
    expect(body).toContain('<struct/>');
    const call = read(body);
    expect(call.methodName).toBe('runCostFunctions');
    expect(call.params).toEqual([
      [
        ['ksm_same_os_score', 3],
        ['other_unit', 1],
      ],
      [HOST_A, HOST_B],
      VM,
      new Map(),
    ]);
  });

  it('reads the engine forms of empty and null maps: <struct/>, <struct></struct>, <ex:nil/>, and discover with <params/>', () => {
    expect(read(wrap('<struct></struct>')).params).toEqual([new Map()]);
    expect(read(wrap('<struct/>')).params).toEqual([new Map()]);
    expect(read(apacheCall('runFilters', [[], [HOST_A], VM, NIL])).params[3]).toBeNull();
    expect(read(apacheCall('discover', []))).toEqual({ methodName: 'discover', params: [] });
    expect(read(apacheCall('runLoadBalancing', ['b', [HOST_A], { k: 'v' }])).params[2]).toEqual(new Map([['k', 'v']]));
  });

  it('reads the extension namespace by its URI, whatever the prefix', () => {
    const body = `<methodCall xmlns:x="http://ws.apache.org/xmlrpc/namespaces/extensions"><methodName>m</methodName><params>
      <param><value><x:i8>9007199254740991</x:i8></value></param>
      <param><value><x:i1>-128</x:i1></value></param>
      <param><value><x:i2>32767</x:i2></value></param>
      <param><value><x:nil/></value></param>
      <param><value><x:float>1.5</x:float></value></param>
    </params></methodCall>`;
    expect(read(body).params).toEqual([9007199254740991, -128, 32767, null, new XmlRpcOther('double', '1.5')]);
  });

  it('reads what Python xmlrpc.client writes: typed strings, <int>, whitespace between elements', () => {
    const body = `<?xml version='1.0'?>
<methodCall>
<methodName>runCostFunctions</methodName>
<params>
<param>
<value><array><data>
<value><array><data>
<value><string>ksm_same_os_score</string></value>
<value><int>2</int></value>
</data></array></value>
</data></array></value>
</param>
<param>
<value><array><data>
<value><string>${HOST_A}</string></value>
</data></array></value>
</param>
<param>
<value><string>${VM}</string></value>
</param>
<param>
<value><struct>
<member>
<name>k</name>
<value><string>v</string></value>
</member>
</struct></value>
</param>
</params>
</methodCall>
`;
    expect(read(body).params).toEqual([[['ksm_same_os_score', 2]], [HOST_A], VM, new Map([['k', 'v']])]);
  });

  it('reads every scalar type and keeps strings exactly (entities, CDATA, whitespace, non-ASCII)', () => {
    const body = `<methodCall><methodName>m</methodName><params>
      <param><value><i4> -7 </i4></value></param>
      <param><value><boolean>1</boolean></value></param>
      <param><value><double>-1.25e3</double></value></param>
      <param><value><dateTime.iso8601>20261124T14:23:18</dateTime.iso8601></value></param>
      <param><value><base64>aGVs
bG8=</base64></value></param>
      <param><value>  a &amp; b &lt;c&gt; &#x263A; é </value></param>
      <param><value><string><![CDATA[<raw>&]]></string></value></param>
      <param><value></value></param>
      <param><value/></param>
      <param><value><nil/></value></param>
      <param><value><i8>-5</i8></value></param>
    </params></methodCall>`;
    expect(read(body).params).toEqual([
      -7,
      true,
      new XmlRpcOther('double', '-1.25e3'),
      new XmlRpcOther('dateTime.iso8601', '20261124T14:23:18'),
      new XmlRpcOther('base64', 'aGVsbG8='),
      '  a & b <c> \u263A é ',
      '<raw>&',
      '',
      '',
      null,
      -5,
    ]);
  });

  it('gives the same call whatever the chunking, including splits inside a multi-byte character', () => {
    const body = apacheCall('runCostFunctions', [[['ksm_same_os_score', i4(1)]], [HOST_A, 'é☺😀'], VM, { clé: 'välue😀' }]);
    const whole = read(body);
    for (const size of [1, 2, 3, 7, 64]) expect(read(body, size)).toEqual(whole);
  });

  it('methodCall without <params> has no parameters; duplicate struct members keep the last', () => {
    expect(read('<methodCall><methodName>system.listMethods</methodName></methodCall>')).toEqual({
      methodName: 'system.listMethods',
      params: [],
    });
    expect(
      read(wrap('<struct><member><name>a</name><value>1</value></member><member><name>a</name><value>2</value></member></struct>'))
        .params[0],
    ).toEqual(new Map([['a', '2']]));
  });
});

describe('refusing bad bodies with a fault', () => {
  const cases: [string, string | Buffer, number, RegExp][] = [
    ['empty body', '', FaultCode.notWellFormed, /root/],
    ['not XML', 'hello, scheduler', FaultCode.notWellFormed, /not well-formed/],
    ['JSON', '{"method":"discover"}', FaultCode.notWellFormed, /not well-formed/],
    ['truncated', engineCostCall(VM, [HOST_A]).slice(0, 150), FaultCode.notWellFormed, /not well-formed/],
    [
      'billion laughs',
      '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><methodCall><methodName>&lol2;</methodName></methodCall>',
      FaultCode.notWellFormed,
      /DOCTYPE/,
    ],
    [
      'external entity',
      '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><methodCall><methodName>&xxe;</methodName></methodCall>',
      FaultCode.notWellFormed,
      /DOCTYPE/,
    ],
    [
      'plain DOCTYPE',
      '<!DOCTYPE methodCall><methodCall><methodName>discover</methodName></methodCall>',
      FaultCode.notWellFormed,
      /DOCTYPE/,
    ],
    ['undeclared entity', wrap('&nbsp;'), FaultCode.notWellFormed, /undefined entity/],
    ['prototype-named entity', wrap('&constructor;'), FaultCode.notWellFormed, /undefined entity/],
    [
      'two roots',
      '<methodCall><methodName>a</methodName></methodCall><methodCall><methodName>b</methodName></methodCall>',
      FaultCode.notWellFormed,
      /one root/,
    ],
    ['control character', wrap('a\u0001b'), FaultCode.notWellFormed, /disallowed character/],
    [
      'invalid UTF-8',
      Buffer.concat([Buffer.from(wrap('').slice(0, 60)), Buffer.from([0xc3, 0x28]), Buffer.from(wrap('').slice(60))]),
      FaultCode.notWellFormed,
      /UTF-8/,
    ],
    [
      'another encoding',
      '<?xml version="1.0" encoding="ISO-8859-1"?><methodCall><methodName>m</methodName></methodCall>',
      FaultCode.unsupportedEncoding,
      /UTF-8/,
    ],
    ['wrong root', '<methodResponse><params/></methodResponse>', FaultCode.invalidXmlRpc, /root/],
    ['no methodName', '<methodCall><params/></methodCall>', FaultCode.invalidXmlRpc, /methodName/],
    [
      'two methodNames',
      '<methodCall><methodName>a</methodName><methodName>b</methodName></methodCall>',
      FaultCode.invalidXmlRpc,
      /methodName/,
    ],
    ['bad method name', '<methodCall><methodName>a b</methodName></methodCall>', FaultCode.invalidXmlRpc, /methodName/],
    ['unknown namespace', wrap('<x:nil xmlns:x="urn:other"/>'), FaultCode.invalidXmlRpc, /unknown namespace/],
    ['unbound prefix', wrap('<ex:nil/>'), FaultCode.notWellFormed, /unbound namespace prefix/],
    [
      'unsupported extension',
      wrap('<ex:serializable xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions">rO0=</ex:serializable>'),
      FaultCode.invalidXmlRpc,
      /not supported/,
    ],
    ['unknown type', wrap('<float>1</float>'), FaultCode.invalidXmlRpc, /unknown value type/],
    ['two values in one', wrap('<int>1</int><int>2</int>'), FaultCode.invalidXmlRpc, /more than one/],
    ['mixed content', wrap('x<int>1</int>'), FaultCode.invalidXmlRpc, /mixes text/],
    ['int not a number', wrap('<i4>12a</i4>'), FaultCode.invalidXmlRpc, /not an integer/],
    ['int out of range', wrap('<int>2147483648</int>'), FaultCode.invalidXmlRpc, /not an integer/],
    ['empty int', wrap('<i4></i4>'), FaultCode.invalidXmlRpc, /not an integer/],
    ['bad boolean', wrap('<boolean>true</boolean>'), FaultCode.invalidXmlRpc, /boolean/],
    ['bad double', wrap('<double>NaN</double>'), FaultCode.invalidXmlRpc, /not a number/],
    ['array without data', wrap('<array></array>'), FaultCode.invalidXmlRpc, /no <data>/],
    ['member without value', wrap('<struct><member><name>a</name></member></struct>'), FaultCode.invalidXmlRpc, /member/],
    ['text in an array', wrap('<array><data>x</data></array>'), FaultCode.invalidXmlRpc, /text is not allowed/],
    ['element in a string', wrap('<string><b>x</b></string>'), FaultCode.invalidXmlRpc, /not allowed/],
    [
      'param without value',
      '<methodCall><methodName>m</methodName><params><param/></params></methodCall>',
      FaultCode.invalidXmlRpc,
      /no <value>/,
    ],
  ];
  it.each(cases)('%s', (_name, body, code, message) => {
    const f = fault(body);
    expect(f.code).toBe(code);
    expect(f.message).toMatch(message);
  });

  it('bounds nesting depth and element count while reading, before the body ends', () => {
    const deep = `<methodCall><methodName>m</methodName><params><param>${'<value><array><data>'.repeat(40)}`;
    expect(fault(deep).message).toMatch(/nested deeper than 64/);
    const many = `<methodCall><methodName>m</methodName><params><param><value><array><data>${'<value/>'.repeat(200)}`;
    expect(fault(many, { maxDepth: 64, maxElements: 100 }).message).toMatch(/more than 100 elements/);
  });
});

describe('writing a methodResponse', () => {
  it('writes integers as <int>, strings typed and escaped, structs and arrays; a strict reader gets them back', () => {
    const xml = writeResponse({
      result_code: 0,
      result: [[HOST_A, 1000, 'ksm_same_os_score']],
      s: 'a&b<c>]]>\r\n',
      t: true,
      empty: [],
      none: {},
    });
    expect(xml).toContain('<value><int>1000</int></value>');
    expect(xml).not.toMatch(/<double>|<i8>|<nil/);
    const r = parseResponse(xml);
    if (!('value' in r)) throw new Error('fault');
    expect(plain(r.value)).toEqual({
      result_code: 0,
      result: [[HOST_A, 1000, 'ksm_same_os_score']],
      s: 'a&b<c>]]>\r\n',
      t: true,
      empty: [],
      none: {},
    });
  });

  it('never writes a double: a non-integer or out-of-range number is a bug, not an answer', () => {
    expect(() => writeResponse({ w: 1.5 })).toThrow(/cannot write 1.5/);
    expect(() => writeResponse([2 ** 31])).toThrow(/cannot write/);
    expect(() => writeResponse([Number.NaN])).toThrow(/cannot write/);
  });

  it('replaces characters XML cannot carry, so every answer parses', () => {
    const xml = writeFault(FaultCode.invalidParams, 'bad \u0000\u0008 \uD800 id');
    expect(parseResponse(xml)).toEqual({ fault: { code: FaultCode.invalidParams, message: 'bad \uFFFD\uFFFD \uFFFD id' } });
  });
});
