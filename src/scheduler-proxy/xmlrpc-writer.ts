/**
 * The XML-RPC writer of the scheduler proxy: methodResponse and fault.
 * Text is escaped; characters XML 1.0 cannot carry become U+FFFD, so every answer parses.
 */

/** A value to write. Numbers must be 32-bit integers: the engine reads weights with `(Integer)`, so no double is ever written. */
export type XmlRpcOut = string | number | boolean | readonly XmlRpcOut[] | { readonly [name: string]: XmlRpcOut };

const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#13;' };

/** Anything but plain text: one test, so the usual string (a host id) costs no replace. */
const NEEDS_WORK = /[^\t\n\u0020-\u0025\u0027-\u003B\u003D\u003F-\uD7FF\uE000-\uFFFD]/;

function escape(s: string): string {
  if (!NEEDS_WORK.test(s)) return s;
  return s.replace(NOT_XML_CHAR, '\uFFFD').replace(/[&<>\r]/g, (c) => ESCAPES[c]!);
}

function writeValue(v: XmlRpcOut): string {
  if (typeof v === 'string') return `<value><string>${escape(v)}</string></value>`;
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < -(2 ** 31) || v > 2 ** 31 - 1) throw new Error(`cannot write ${v} as an XML-RPC <int>`);
    return `<value><int>${v}</int></value>`;
  }
  if (typeof v === 'boolean') return `<value><boolean>${v ? 1 : 0}</boolean></value>`;
  let out: string;
  if (Array.isArray(v)) {
    out = '<value><array><data>';
    for (const item of v as readonly XmlRpcOut[]) out += writeValue(item);
    return `${out}</data></array></value>`;
  }
  out = '<value><struct>';
  for (const [name, item] of Object.entries(v)) out += `<member><name>${escape(name)}</name>${writeValue(item)}</member>`;
  return `${out}</struct></value>`;
}

const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n';

export function writeResponse(value: XmlRpcOut): string {
  return `${HEAD}<methodResponse><params><param>${writeValue(value)}</param></params></methodResponse>\n`;
}

export function writeFault(code: number, message: string): string {
  return `${HEAD}<methodResponse><fault>${writeValue({ faultCode: code, faultString: message })}</fault></methodResponse>\n`;
}
