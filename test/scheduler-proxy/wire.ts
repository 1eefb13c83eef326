/**
 * Test-side XML-RPC, independent of the service's codec: requests written the
 * way the engine's Apache XML-RPC 3.1.3 client writes them, and a strict
 * reader of responses that keeps each value's XML type.
 */
import { Agent, request } from 'undici';
import { SaxesParser } from 'saxes';

/** An int the way the engine sends one (a java.lang.Integer). */
export class I4 {
  constructor(readonly n: number) {}
}
export const i4 = (n: number) => new I4(n);
/** A null the way Apache writes it with extensions on. */
export const NIL = Symbol('nil');
export type ApacheParam = string | I4 | typeof NIL | readonly ApacheParam[] | { readonly [k: string]: string };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function apacheValue(v: ApacheParam): string {
  if (typeof v === 'string') return `<value>${esc(v)}</value>`; // untyped: Apache's StringSerializer
  if (v instanceof I4) return `<value><i4>${v.n}</i4></value>`;
  if (v === NIL) return '<value><ex:nil/></value>';
  if (Array.isArray(v)) return `<value><array><data>${(v as readonly ApacheParam[]).map(apacheValue).join('')}</data></array></value>`;
  const members = Object.entries(v as Record<string, string>);
  // ws-commons' XMLWriterImpl closes an element with no content as <x/>.
  if (members.length === 0) return '<value><struct/></value>';
  return `<value><struct>${members.map(([k, s]) => `<member><name>${esc(k)}</name>${apacheValue(s)}</member>`).join('')}</struct></value>`;
}

/** A methodCall byte for byte as Apache XML-RPC 3.1.3 writes it with `enabledForExtensions(true)`. */
export function apacheCall(method: string, params: readonly ApacheParam[]): string {
  const body = params.length === 0 ? '<params/>' : `<params>${params.map((p) => `<param>${apacheValue(p)}</param>`).join('')}</params>`;
  return `<?xml version="1.0" encoding="UTF-8"?><methodCall xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions"><methodName>${esc(method)}</methodName>${body}</methodCall>`;
}

/** runCostFunctions as the engine calls it, for one VM and its candidate hosts. */
export function engineCostCall(
  vmId: string,
  hostIds: readonly string[],
  units: readonly (readonly [string, number])[] = [['ksm_same_os_score', 1]],
): string {
  return apacheCall('runCostFunctions', [units.map(([name, factor]) => [name, i4(factor)]), hostIds, vmId, {}]);
}

/** A value as the response typed it. */
export type Typed =
  | { type: 'int' | 'i4'; value: number }
  | { type: 'string'; value: string }
  | { type: 'boolean'; value: boolean }
  | { type: 'array'; value: Typed[] }
  | { type: 'struct'; value: Map<string, Typed> }
  | { type: 'other'; tag: string; value: string };

export type Response = { fault: { code: number; message: string } } | { value: Typed };

/**
 * Reads a methodResponse strictly: one root, exactly one param or a fault
 * struct {faultCode: int, faultString: string}, each value holding exactly one
 * typed child (or untyped text: a string). Throws on anything else.
 */
export function parseResponse(xml: string): Response {
  const parser = new SaxesParser();
  type Node = { name: string; children: Node[]; text: string };
  const root: Node = { name: '#root', children: [], text: '' };
  const stack: Node[] = [root];
  parser.on('error', (e) => {
    throw e;
  });
  parser.on('doctype', () => {
    throw new Error('DOCTYPE in a response');
  });
  parser.on('opentag', (t) => {
    const n: Node = { name: t.name, children: [], text: '' };
    stack.at(-1)!.children.push(n);
    stack.push(n);
  });
  parser.on('closetag', () => void stack.pop());
  parser.on('text', (t) => void (stack.at(-1)!.text += t));
  parser.write(xml).close();

  const only = (n: Node, name: string): Node => {
    if (n.children.length !== 1 || n.children[0]!.name !== name)
      throw new Error(`<${n.name}> must hold exactly one <${name}>, has ${n.children.map((c) => c.name).join(',') || 'none'}`);
    if (n.text.trim() !== '') throw new Error(`<${n.name}> holds text`);
    return n.children[0]!;
  };
  const value = (v: Node): Typed => {
    if (v.name !== 'value') throw new Error(`expected <value>, got <${v.name}>`);
    if (v.children.length === 0) return { type: 'string', value: v.text };
    const t = only(v, v.children[0]!.name);
    switch (t.name) {
      case 'int':
      case 'i4':
        if (!/^[+-]?\d+$/.test(t.text) || t.children.length > 0) throw new Error(`bad <${t.name}> ${t.text}`);
        return { type: t.name, value: Number(t.text) };
      case 'string':
        return { type: 'string', value: t.text };
      case 'boolean':
        if (t.text !== '0' && t.text !== '1') throw new Error(`bad boolean ${t.text}`);
        return { type: 'boolean', value: t.text === '1' };
      case 'array': {
        const data = only(t, 'data');
        if (data.text.trim() !== '') throw new Error('text in <data>');
        return { type: 'array', value: data.children.map(value) };
      }
      case 'struct': {
        const m = new Map<string, Typed>();
        for (const member of t.children) {
          if (member.name !== 'member' || member.children.length !== 2 || member.children[0]!.name !== 'name')
            throw new Error('bad <member>');
          if (m.has(member.children[0]!.text)) throw new Error(`member ${member.children[0]!.text} twice`);
          m.set(member.children[0]!.text, value(member.children[1]!));
        }
        return { type: 'struct', value: m };
      }
      default:
        return { type: 'other', tag: t.name, value: t.text };
    }
  };

  const response = only(root, 'methodResponse');
  const top = response.children[0];
  if (response.children.length !== 1 || top === undefined) throw new Error('<methodResponse> must hold one child');
  if (top.name === 'fault') {
    const f = value(only(top, 'value'));
    if (f.type !== 'struct') throw new Error('fault is not a struct');
    const code = f.value.get('faultCode');
    const message = f.value.get('faultString');
    if (f.value.size !== 2 || code?.type !== 'int' || message?.type !== 'string')
      throw new Error('fault must be {faultCode: int, faultString: string}');
    return { fault: { code: code.value, message: message.value } };
  }
  if (top.name !== 'params') throw new Error(`unexpected <${top.name}>`);
  return { value: value(only(only(top, 'param'), 'value')) };
}

/** JS values of a typed tree (structs as plain objects), for deep equality. */
export function plain(t: Typed): unknown {
  switch (t.type) {
    case 'array':
      return t.value.map(plain);
    case 'struct':
      return Object.fromEntries([...t.value].map(([k, v]) => [k, plain(v)]));
    default:
      return t.value;
  }
}

/** Few connections, as the engine uses: the listener bounds how many it holds open. */
const agent = new Agent({ connections: 8 });

/** POSTs `body` and reads the response strictly. */
export async function post(
  port: number,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; response: Response }> {
  const res = await request(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'text/xml', ...headers },
    dispatcher: agent,
  });
  const text = await res.body.text();
  return { status: res.statusCode, text, response: parseResponse(text) };
}

export async function call(port: number, body: string): Promise<Typed> {
  const { status, response } = await post(port, body);
  if (status !== 200) throw new Error(`HTTP ${status}`);
  if ('fault' in response) throw new Error(`fault ${response.fault.code}: ${response.fault.message}`);
  return response.value;
}

export async function expectFault(
  port: number,
  body: string | Buffer,
  code?: number,
  messagePart?: string | RegExp,
): Promise<{ code: number; message: string }> {
  const { status, response } = await post(port, body);
  if (status !== 200) throw new Error(`HTTP ${status}`);
  if (!('fault' in response)) throw new Error(`expected a fault, got ${JSON.stringify(plain(response.value))}`);
  const f = response.fault;
  if (code !== undefined && f.code !== code) throw new Error(`fault code ${f.code}, expected ${code}: ${f.message}`);
  if (messagePart !== undefined && !(typeof messagePart === 'string' ? f.message.includes(messagePart) : messagePart.test(f.message))) {
    throw new Error(`fault message ${JSON.stringify(f.message)} does not contain ${String(messagePart)}`);
  }
  return f;
}
