/**
 * XML-RPC values as the scheduler proxy reads them, its fault codes, and how
 * a read value is named in an error message.
 */

/** Apache XML-RPC's extension types (the engine declares them with `enabledForExtensions`). */
export const EXTENSIONS_NS = 'http://ws.apache.org/xmlrpc/namespaces/extensions';

/** A value read from a call. Strings are strings whether typed `<string>` or untyped; all integer types are numbers. */
export type XmlRpcValue = string | number | boolean | null | XmlRpcOther | XmlRpcValue[] | XmlRpcStruct;
export type XmlRpcStruct = Map<string, XmlRpcValue>;

/** Types read and checked but never used by a handler: kept apart so they cannot pass for a string or an int. */
export class XmlRpcOther {
  constructor(
    readonly type: 'double' | 'dateTime.iso8601' | 'base64',
    readonly text: string,
  ) {}
}

export interface MethodCall {
  readonly methodName: string;
  readonly params: readonly XmlRpcValue[];
}

/** Fault codes of the XML-RPC "specification for fault code interoperability". */
export const FaultCode = {
  notWellFormed: -32700,
  unsupportedEncoding: -32701,
  invalidXmlRpc: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internal: -32603,
  transport: -32300,
} as const;

export class XmlRpcFault extends Error {
  override readonly name = 'XmlRpcFault';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Caller text as it may be echoed in a fault or a log line: short. */
export const clip = (s: string) => (s.length > 40 ? `${s.slice(0, 40)}...` : s);

/** What a value is, in the words of an XML-RPC type, for error messages. */
export function typeName(value: XmlRpcValue | undefined): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'nil';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'number') return 'an int';
  if (typeof value === 'boolean') return 'a boolean';
  if (value instanceof XmlRpcOther) return `a ${value.type}`;
  if (Array.isArray(value)) return 'an array';
  return 'a struct';
}

/** The value types read: XML-RPC's, plain <nil/> and <i8> as Python writes them, and Apache's extensions that are plain data. */
export const SCALARS: ReadonlySet<string> = new Set([
  'string',
  'int',
  'i4',
  'boolean',
  'double',
  'dateTime.iso8601',
  'base64',
  'nil',
  'i8',
  'ex:nil',
  'ex:i1',
  'ex:i2',
  'ex:i8',
  'ex:float',
]);
const INT_RANGE: Record<string, readonly [number, number]> = {
  int: [-(2 ** 31), 2 ** 31 - 1],
  i4: [-(2 ** 31), 2 ** 31 - 1],
  'ex:i1': [-128, 127],
  'ex:i2': [-32_768, 32_767],
  // 64-bit as far as a JS number is exact: no handler reads one anyway.
  i8: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  'ex:i8': [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

const invalid = (message: string) => new XmlRpcFault(FaultCode.invalidXmlRpc, message);
/** Only XML whitespace. */
export const isBlank = (s: string) => /^[ \t\r\n]*$/.test(s);

/** A scalar value of type `type` (one of SCALARS) read from its element's text, checked. */
export function readScalar(type: string, text: string): XmlRpcValue {
  const range = INT_RANGE[type];
  if (range !== undefined) {
    const t = text.trim();
    const n = Number(t);
    if (!/^[+-]?\d{1,20}$/.test(t) || n < range[0] || n > range[1])
      throw invalid(`<${type}> holds ${JSON.stringify(clip(text))}, not an integer from ${range[0]} to ${range[1]}`);
    return n;
  }
  switch (type) {
    case 'string':
      return text;
    case 'boolean': {
      const t = text.trim();
      if (t !== '0' && t !== '1') throw invalid(`<boolean> holds ${JSON.stringify(clip(text))}, not 0 or 1`);
      return t === '1';
    }
    case 'double':
    case 'ex:float':
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text.trim()))
        throw invalid(`<${type}> holds ${JSON.stringify(clip(text))}, not a number`);
      return new XmlRpcOther('double', text.trim());
    case 'dateTime.iso8601':
      if (!/^\d{4}-?\d{2}-?\d{2}T\d{2}:\d{2}:\d{2}/.test(text.trim()))
        throw invalid(`<dateTime.iso8601> holds ${JSON.stringify(clip(text))}`);
      return new XmlRpcOther('dateTime.iso8601', text.trim());
    case 'base64':
      if (!/^[A-Za-z0-9+/=\s]*$/.test(text)) throw invalid('<base64> holds characters outside base64');
      return new XmlRpcOther('base64', text.replace(/\s+/g, ''));
    case 'nil':
    case 'ex:nil':
      if (!isBlank(text)) throw invalid(`<${type}> must be empty`);
      return null;
  }
  throw invalid(`unknown value type <${type}>`);
}
