/**
 * The XML-RPC reader of the scheduler proxy: a streaming methodCall reader on
 * saxes (bounded, no DTD, no entities).
 */
import { SaxesParser, type SaxesTagNS } from 'saxes';
import {
  EXTENSIONS_NS,
  FaultCode,
  isBlank,
  type MethodCall,
  readScalar,
  SCALARS,
  XmlRpcFault,
  type XmlRpcStruct,
  type XmlRpcValue,
} from './xmlrpc-values';

export interface ReaderLimits {
  /** Deepest element nesting; the engine's calls nest 10 deep. */
  readonly maxDepth: number;
  /** Most elements in one call; a host id costs one. */
  readonly maxElements: number;
}

export const DEFAULT_READER_LIMITS: ReaderLimits = { maxDepth: 64, maxElements: 100_000 };

type Frame =
  | { kind: 'methodCall'; methodName?: string; params?: XmlRpcValue[] }
  | { kind: 'methodName'; text: string }
  | { kind: 'params'; items: XmlRpcValue[] }
  | { kind: 'param'; value?: XmlRpcValue; has: boolean }
  | { kind: 'value'; text: string; child?: XmlRpcValue; has: boolean }
  | { kind: 'array'; items?: XmlRpcValue[] }
  | { kind: 'data'; items: XmlRpcValue[] }
  | { kind: 'struct'; members: XmlRpcStruct }
  | { kind: 'member'; name?: string; value?: XmlRpcValue; has: boolean }
  | { kind: 'name'; text: string }
  | { kind: 'scalar'; type: string; text: string };

const invalid = (message: string) => new XmlRpcFault(FaultCode.invalidXmlRpc, message);

/**
 * Reads one methodCall from UTF-8 chunks as they arrive, so a body is never
 * held whole and a bad one is refused at the first wrong byte. Refuses a
 * DOCTYPE (nothing is ever expanded: saxes knows only the five predefined
 * entities and character references), elements outside XML-RPC and Apache's
 * extension namespace, and anything deeper or larger than the limits.
 * write() and end() throw XmlRpcFault.
 */
export class MethodCallReader {
  private readonly parser = new SaxesParser({ xmlns: true });
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private readonly stack: Frame[] = [];
  private elements = 0;
  private call: MethodCall | undefined;

  constructor(private readonly limits: ReaderLimits = DEFAULT_READER_LIMITS) {
    const p = this.parser;
    p.on('error', (err) => {
      throw new XmlRpcFault(FaultCode.notWellFormed, `not well-formed XML: ${err.message}`);
    });
    p.on('doctype', () => {
      throw new XmlRpcFault(FaultCode.notWellFormed, 'a DOCTYPE is not accepted (XML-RPC has none; entity declarations are refused)');
    });
    // Six handlers at most: saxes adds one property per handler to the parser, and a seventh measurably
    // turned it into a slow dictionary-mode object (5x the parse time). The XML declaration is read in open().
    p.on('opentag', (tag) => this.open(tag));
    p.on('closetag', () => this.close());
    p.on('text', (text) => this.text(text));
    p.on('cdata', (text) => this.text(text));
  }

  write(chunk: Uint8Array): void {
    let s: string;
    try {
      s = this.decoder.decode(chunk, { stream: true });
    } catch {
      throw new XmlRpcFault(FaultCode.notWellFormed, 'the body is not valid UTF-8');
    }
    if (s !== '') this.parser.write(s);
  }

  /** The call, once the body is complete. */
  end(): MethodCall {
    let rest: string;
    try {
      rest = this.decoder.decode();
    } catch {
      throw new XmlRpcFault(FaultCode.notWellFormed, 'the body is not valid UTF-8');
    }
    if (rest !== '') this.parser.write(rest);
    this.parser.close();
    if (this.call === undefined) throw invalid('no methodCall element');
    return this.call;
  }

  private open(tag: SaxesTagNS): void {
    if (++this.elements > this.limits.maxElements) throw invalid(`more than ${this.limits.maxElements} elements`);
    const encoding = this.elements === 1 ? this.parser.xmlDecl.encoding : undefined;
    if (encoding !== undefined && !/^(utf-?8|us-ascii|ascii)$/i.test(encoding)) {
      throw new XmlRpcFault(FaultCode.unsupportedEncoding, `encoding ${JSON.stringify(encoding)} is not supported: send UTF-8`);
    }
    if (this.stack.length >= this.limits.maxDepth) throw invalid(`elements nested deeper than ${this.limits.maxDepth}`);
    const name = tag.uri === '' ? tag.local : tag.uri === EXTENSIONS_NS ? `ex:${tag.local}` : undefined;
    if (name === undefined) throw invalid(`element ${JSON.stringify(tag.name)} is in an unknown namespace (${JSON.stringify(tag.uri)})`);
    const parent = this.stack.at(-1);
    const misplaced = () =>
      invalid(`<${name}> is not allowed ${parent === undefined ? 'as the root element' : `inside <${parentName(parent)}>`}`);

    let frame: Frame;
    switch (parent?.kind) {
      case undefined:
        if (name !== 'methodCall') throw misplaced();
        frame = { kind: 'methodCall' };
        break;
      case 'methodCall':
        if (name === 'methodName' && parent.methodName === undefined && parent.params === undefined)
          frame = { kind: 'methodName', text: '' };
        else if (name === 'params' && parent.methodName !== undefined && parent.params === undefined) frame = { kind: 'params', items: [] };
        else throw invalid(`<methodCall> holds one <methodName>, then at most one <params>; got <${name}> out of place`);
        break;
      case 'params':
        if (name !== 'param') throw misplaced();
        frame = { kind: 'param', has: false };
        break;
      case 'param':
      case 'data':
        if (name !== 'value' || (parent.kind === 'param' && parent.has)) throw misplaced();
        frame = { kind: 'value', text: '', has: false };
        break;
      case 'member':
        if (name === 'name' && parent.name === undefined) frame = { kind: 'name', text: '' };
        else if (name === 'value' && !parent.has) frame = { kind: 'value', text: '', has: false };
        else throw misplaced();
        break;
      case 'value':
        if (parent.has) throw invalid('<value> holds more than one value');
        if (name === 'array') frame = { kind: 'array' };
        else if (name === 'struct') frame = { kind: 'struct', members: new Map() };
        else if (SCALARS.has(name)) frame = { kind: 'scalar', type: name, text: '' };
        else
          throw name.startsWith('ex:') ? invalid(`the extension type <${name}> is not supported`) : invalid(`unknown value type <${name}>`);
        parent.has = true;
        break;
      case 'array':
        if (name !== 'data' || parent.items !== undefined) throw misplaced();
        frame = { kind: 'data', items: [] };
        break;
      case 'struct':
        if (name !== 'member') throw misplaced();
        frame = { kind: 'member', has: false };
        break;
      default:
        // methodName, name and scalars hold text only.
        throw misplaced();
    }
    this.stack.push(frame);
  }

  private text(text: string): void {
    const top = this.stack.at(-1);
    if (top === undefined) return; // whitespace around the root; saxes refuses anything else there
    switch (top.kind) {
      case 'methodName':
      case 'name':
      case 'scalar':
      case 'value':
        top.text += text;
        return;
      default:
        if (!isBlank(text)) throw invalid(`text is not allowed inside <${parentName(top)}>`);
    }
  }

  private close(): void {
    const frame = this.stack.pop()!;
    const parent = this.stack.at(-1);
    switch (frame.kind) {
      case 'methodCall':
        if (frame.methodName === undefined) throw invalid('<methodCall> has no <methodName>');
        this.call = { methodName: frame.methodName, params: frame.params ?? [] };
        return;
      case 'methodName':
        if (!/^[A-Za-z0-9_.:/]{1,256}$/.test(frame.text)) throw invalid('<methodName> must be 1 to 256 of A-Z a-z 0-9 _ . : /');
        (parent as Extract<Frame, { kind: 'methodCall' }>).methodName = frame.text;
        return;
      case 'params':
        (parent as Extract<Frame, { kind: 'methodCall' }>).params = frame.items;
        return;
      case 'param':
        if (!frame.has) throw invalid('<param> has no <value>');
        (parent as Extract<Frame, { kind: 'params' }>).items.push(frame.value!);
        return;
      case 'value': {
        let value: XmlRpcValue;
        if (frame.has) {
          if (!isBlank(frame.text)) throw invalid('<value> mixes text with a typed value');
          value = frame.child!;
        } else {
          value = frame.text; // untyped: a string, as Apache XML-RPC writes them
        }
        this.deliver(parent!, value);
        return;
      }
      case 'array':
        if (frame.items === undefined) throw invalid('<array> has no <data>');
        (parent as Extract<Frame, { kind: 'value' }>).child = frame.items;
        return;
      case 'data':
        (parent as Extract<Frame, { kind: 'array' }>).items = frame.items;
        return;
      case 'struct':
        (parent as Extract<Frame, { kind: 'value' }>).child = frame.members;
        return;
      case 'member':
        if (frame.name === undefined || !frame.has) throw invalid('<member> needs a <name> and a <value>');
        (parent as Extract<Frame, { kind: 'struct' }>).members.set(frame.name, frame.value!);
        return;
      case 'name':
        (parent as Extract<Frame, { kind: 'member' }>).name = frame.text;
        return;
      case 'scalar':
        (parent as Extract<Frame, { kind: 'value' }>).child = readScalar(frame.type, frame.text);
        return;
    }
  }

  private deliver(parent: Frame, value: XmlRpcValue): void {
    if (parent.kind === 'data') parent.items.push(value);
    else if (parent.kind === 'param' || parent.kind === 'member') {
      parent.value = value;
      parent.has = true;
    }
  }
}

function parentName(frame: Frame): string {
  return frame.kind === 'scalar' ? frame.type : frame.kind;
}
