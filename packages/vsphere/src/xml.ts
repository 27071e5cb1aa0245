import { XMLParser } from "fast-xml-parser";
import { ProtocolError } from "./errors.js";

export const XSI_NS = "http://www.w3.org/2001/XMLSchema-instance";
export const XSD_NS = "http://www.w3.org/2001/XMLSchema";
export const SOAPENV_NS = "http://schemas.xmlsoap.org/soap/envelope/";

// XML 1.0 cannot carry these at all, not even as character references.
const FORBIDDEN =
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/u;

function checkChars(s: string): void {
  if (FORBIDDEN.test(s)) throw new TypeError(`string contains a character XML 1.0 cannot carry: ${JSON.stringify(s)}`);
}

/** Escapes element text. `\r` is sent as a reference because parsers normalise a literal one to `\n`. */
export function escapeText(s: string): string {
  checkChars(s);
  return s.replace(/[&<>\r]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : "&#13;"));
}

/** Escapes an attribute value (quoted with `"`); whitespace is kept by references, as attribute normalisation would eat it. */
export function escapeAttr(s: string): string {
  checkChars(s);
  return s.replace(/[&<>"'\t\n\r]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** An element with already-escaped attributes and content. */
export function element(name: string, content: string, attrs: Record<string, string> = {}): string {
  const a = Object.entries(attrs)
    .map(([k, v]) => ` ${k}="${escapeAttr(v)}"`)
    .join("");
  return `<${name}${a}>${content}</${name}>`;
}

const ENTITY = /&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/g;

/**
 * Decodes the five predefined entities and character references in one pass, so `&amp;#34;` stays
 * `&#34;`. fast-xml-parser (5.x) leaves numeric references alone, and Go's encoder (vcsim) writes
 * `"` as `&#34;`.
 */
export function decodeEntities(s: string): string {
  if (!s.includes("&")) return s;
  return s.replace(ENTITY, (_m, e: string) => {
    switch (e) {
      case "amp":
        return "&";
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "quot":
        return '"';
      case "apos":
        return "'";
      default:
        return String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}

/**
 * A parsed element as fast-xml-parser yields it with the options below: child elements under their
 * local name, always as arrays; attributes under `@_<qname>` (prefixes kept, so namespaces can be
 * resolved); text under `#text`.
 */
export type XNode = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  textNodeName: "#text",
  alwaysCreateTextNode: true,
  // Every element is an array; the schema decides later what is a scalar.
  isArray: (_name, _jpath, _isLeaf, isAttribute) => !isAttribute,
  // Tag prefixes are noise here (soapenv:, none for vim25); attribute prefixes matter and are kept.
  transformTagName: (tag) => tag.slice(tag.indexOf(":") + 1),
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: false,
  tagValueProcessor: (_name, value) => decodeEntities(value),
  attributeValueProcessor: (_name, value) => decodeEntities(value),
});

/**
 * Parses a document. `validate` (default) checks well-formedness first, a second pass over the text;
 * the transport skips it for SOAP responses, which it checks for completeness itself.
 */
export function parseXml(text: string, validate = true): XNode {
  try {
    return parser.parse(text, validate) as XNode;
  } catch (err) {
    throw new ProtocolError(`response is not well-formed XML: ${(err as Error).message}`, { cause: err });
  }
}

/** Prefix → namespace URI in scope at an element ("" is the default namespace). */
export type NsScope = ReadonlyMap<string, string>;

export const EMPTY_SCOPE: NsScope = new Map();

export function scopeOf(node: XNode, parent: NsScope): NsScope {
  let scope: Map<string, string> | undefined;
  for (const key of Object.keys(node)) {
    if (!key.startsWith("@_xmlns")) continue;
    const prefix = key === "@_xmlns" ? "" : key.startsWith("@_xmlns:") ? key.slice(8) : undefined;
    if (prefix === undefined) continue;
    scope ??= new Map(parent);
    scope.set(prefix, String(node[key]));
  }
  return scope ?? parent;
}

/** The child elements of a node, by local name. */
export function childEntries(node: XNode): Array<[string, XNode[]]> {
  const out: Array<[string, XNode[]]> = [];
  for (const [key, val] of Object.entries(node)) {
    if (key.startsWith("@_") || key === "#text" || !Array.isArray(val)) continue;
    out.push([key, val as XNode[]]);
  }
  return out;
}

export function children(node: XNode, name: string): XNode[] {
  const v = node[name];
  return Array.isArray(v) ? (v as XNode[]) : [];
}

export function textOf(node: XNode): string {
  const t = node["#text"];
  return typeof t === "string" ? t : "";
}

/**
 * The resolved xsi:type of an element, whatever prefix is bound to the XMLSchema-instance namespace
 * (vcsim writes `XMLSchema-instance:type` inside property values). XSD built-ins come back as
 * `xsd:<name>`; vim25 types as their local name.
 */
export function xsiTypeOf(node: XNode, scope: NsScope): string | undefined {
  for (const key of Object.keys(node)) {
    if (!key.startsWith("@_") || !key.endsWith(":type")) continue;
    const prefix = key.slice(2, -5);
    if (scope.get(prefix) !== XSI_NS) continue;
    const qname = String(node[key]);
    const colon = qname.indexOf(":");
    if (colon < 0) return qname;
    const ns = scope.get(qname.slice(0, colon));
    const local = qname.slice(colon + 1);
    return ns === XSD_NS ? `xsd:${local}` : local;
  }
  return undefined;
}
