import { XMLValidator } from "fast-xml-parser";
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
 * A parsed element: child elements under their local name, always as arrays (the schema decides
 * later what is a scalar); attributes under `@_<qname>` (prefixes kept, so namespaces can be
 * resolved); text under `#text` (always present, "" when there is none). Entities and character
 * references are decoded in text and attribute values.
 */
export type XNode = Record<string, unknown>;

function malformed(what: string, at: number): ProtocolError {
  return new ProtocolError(`response is not well-formed XML: ${what} at offset ${at}`);
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

/**
 * A single pass over the text straight into XNodes. fast-xml-parser built the same tree through an
 * intermediate one plus path matching per tag, which cost more CPU than the rest of a small call's
 * decoding; this reads only what SOAP answers contain (elements, attributes, text, CDATA, comments,
 * the XML declaration), checks that end tags match, and refuses a DTD (no entity expansion).
 */
function parseTree(text: string): XNode {
  const root: XNode = { "#text": "" };
  const stack: XNode[] = [root];
  const open: string[] = [];
  let cur = root;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const lt = text.indexOf("<", i);
    const stop = lt < 0 ? n : lt;
    if (stop > i && cur !== root) cur["#text"] += decodeEntities(text.slice(i, stop));
    if (lt < 0) break;
    const c = text.charCodeAt(lt + 1);
    if (c === 47 /* / */) {
      const gt = text.indexOf(">", lt);
      if (gt < 0) throw malformed("unterminated end tag", lt);
      const name = text.slice(lt + 2, gt).trimEnd();
      if (open.pop() !== name) throw malformed(`unexpected end tag </${name}>`, lt);
      stack.pop();
      cur = stack[stack.length - 1]!;
      i = gt + 1;
      continue;
    }
    if (c === 63 /* ? */) {
      const end = text.indexOf("?>", lt + 2);
      if (end < 0) throw malformed("unterminated processing instruction", lt);
      i = end + 2;
      continue;
    }
    if (c === 33 /* ! */) {
      if (text.startsWith("<!--", lt)) {
        const end = text.indexOf("-->", lt + 4);
        if (end < 0) throw malformed("unterminated comment", lt);
        i = end + 3;
        continue;
      }
      if (text.startsWith("<![CDATA[", lt)) {
        const end = text.indexOf("]]>", lt + 9);
        if (end < 0) throw malformed("unterminated CDATA section", lt);
        if (cur !== root) cur["#text"] += text.slice(lt + 9, end);
        i = end + 3;
        continue;
      }
      throw malformed("a DTD or declaration (not allowed in SOAP)", lt);
    }
    let j = lt + 1;
    while (j < n) {
      const ch = text.charCodeAt(j);
      if (isSpace(ch) || ch === 47 || ch === 62) break;
      j++;
    }
    const qname = text.slice(lt + 1, j);
    if (qname === "") throw malformed("a tag without a name", lt);
    const node: XNode = {};
    let selfClosing = false;
    for (;;) {
      while (j < n && isSpace(text.charCodeAt(j))) j++;
      const ch = text.charCodeAt(j);
      if (ch === 62 /* > */) {
        j++;
        break;
      }
      if (ch === 47 /* / */) {
        if (text.charCodeAt(j + 1) !== 62) throw malformed("'/' not followed by '>'", j);
        j += 2;
        selfClosing = true;
        break;
      }
      if (j >= n) throw malformed(`unterminated start tag <${qname}`, lt);
      const eq = text.indexOf("=", j);
      if (eq < 0) throw malformed(`attribute without a value in <${qname}`, j);
      const attr = text.slice(j, eq).trimEnd();
      if (attr === "" || /[\s<>"'/]/.test(attr)) throw malformed(`bad attribute name in <${qname}`, j);
      let q = eq + 1;
      while (q < n && isSpace(text.charCodeAt(q))) q++;
      const quote = text.charCodeAt(q);
      if (quote !== 34 && quote !== 39) throw malformed(`unquoted attribute ${attr}`, q);
      const end = text.indexOf(quote === 34 ? '"' : "'", q + 1);
      if (end < 0) throw malformed(`unterminated attribute ${attr}`, q);
      node[`@_${attr}`] = decodeEntities(text.slice(q + 1, end));
      j = end + 1;
    }
    node["#text"] = "";
    const local = qname.slice(qname.indexOf(":") + 1);
    if (local === "" || local === "__proto__") throw malformed(`bad element name <${qname}>`, lt);
    const list = cur[local];
    if (Array.isArray(list)) list.push(node);
    else cur[local] = [node];
    if (!selfClosing) {
      stack.push(node);
      open.push(qname);
      cur = node;
    }
    i = j;
  }
  if (open.length > 0) throw malformed(`<${open[open.length - 1]!}> is not closed`, n);
  return root;
}

/**
 * Parses a document. `validate` (default) runs fast-xml-parser's full well-formedness check first, a
 * second pass over the text; the transport skips it for SOAP responses, which it checks for
 * completeness itself.
 */
export function parseXml(text: string, validate = true): XNode {
  if (validate) {
    const ok = XMLValidator.validate(text);
    if (ok !== true) throw new ProtocolError(`response is not well-formed XML: ${ok.err.msg}`);
  }
  return parseTree(text);
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
