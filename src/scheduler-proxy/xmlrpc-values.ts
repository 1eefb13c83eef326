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
