import { ProtocolError } from "./errors.js";
import { EMPTY_SCOPE, decodeEntities, type NsScope } from "./xml.js";

/**
 * Cuts the elements at one path out of a document while it arrives, so a large SOAP answer (the
 * first WaitForUpdatesEx of a 10,000-VM inventory is 15 MB of XML) never exists as one parsed
 * tree: each element at `path` (local names from the root, e.g. Envelope, Body,
 * WaitForUpdatesExResponse, returnval, filterSet, objectSet) is handed to `onElement` as its own
 * text, with the namespace scope of its parent; everything else (the skeleton: the envelope, a
 * fault, `version`, `token`) is kept and returned by `end()` to be parsed as a whole document.
 *
 * A tag scanner, not a parser: it finds `<`, `</`, `/>`, skips quoted attribute values,
 * comments, CDATA and processing instructions, and counts depth. Well-formedness is left to the
 * parser that reads the pieces.
 */
export class ElementSplitter {
  private buf = "";
  /** Scan position in `buf`. */
  private pos = 0;
  /** How much of `buf` is already in the skeleton or handed over. */
  private done = 0;
  /** Where the element being cut starts in `buf`, or -1. */
  private cutStart = -1;
  /** Depth (stack length) of the element being cut. */
  private cutDepth = 0;
  /** Open elements: local name and the namespace scope in force inside them. */
  private readonly stack: Array<{ name: string; scope: NsScope }> = [];
  private readonly skeleton: string[] = [];
  /** Elements cut out so far. */
  count = 0;

  constructor(
    private readonly path: readonly string[],
    private readonly onElement: (xml: string, scope: NsScope) => void,
  ) {}

  /** Feeds the next piece of the document. */
  push(text: string): void {
    this.buf = this.buf.length === 0 ? text : this.buf + text;
    this.scan();
    if (this.cutStart < 0 && this.pos > this.done) {
      this.skeleton.push(this.buf.slice(this.done, this.pos));
      this.done = this.pos;
    }
    // Keep only what is still needed: the element being cut, or a tag not yet complete.
    const keepFrom = this.cutStart >= 0 ? this.cutStart : this.pos;
    if (keepFrom > 0) {
      this.buf = this.buf.slice(keepFrom);
      this.pos -= keepFrom;
      this.done -= keepFrom;
      if (this.cutStart >= 0) this.cutStart = 0;
    }
  }

  /** The document without the elements cut out of it. */
  end(): string {
    this.skeleton.push(this.buf.slice(this.done));
    this.buf = "";
    this.pos = this.done = 0;
    return this.skeleton.join("");
  }

  private scan(): void {
    const b = this.buf;
    for (;;) {
      const lt = b.indexOf("<", this.pos);
      if (lt < 0) {
        this.pos = b.length;
        return;
      }
      // Too little to tell a comment or CDATA from a tag: wait for more.
      if (lt + 9 > b.length && b.charCodeAt(lt + 1) === 0x21) return void (this.pos = lt);
      const next = b.charCodeAt(lt + 1);
      let end: number;
      if (next === 0x21 /* ! */) {
        // Comment, CDATA, or a declaration: skipped whole.
        if (b.startsWith("<!--", lt)) end = endOf(b, "-->", lt + 4);
        else if (b.startsWith("<![CDATA[", lt)) end = endOf(b, "]]>", lt + 9);
        else end = tagEnd(b, lt + 2);
      } else if (next === 0x3f /* ? */) {
        end = endOf(b, "?>", lt + 2);
      } else {
        end = tagEnd(b, lt + 1);
      }
      if (end < 0) return void (this.pos = lt);
      this.pos = end;
      if (next === 0x21 || next === 0x3f) continue;
      if (next === 0x2f /* / */) {
        if (this.stack.pop() === undefined) throw new ProtocolError("the response closes an element it never opened");
        if (this.cutStart >= 0 && this.stack.length === this.cutDepth - 1) this.cut(end, this.stack.at(-1)?.scope ?? EMPTY_SCOPE);
        continue;
      }
      const selfClosing = b.charCodeAt(end - 2) === 0x2f;
      const parentScope = this.stack.at(-1)?.scope ?? EMPTY_SCOPE;
      if (this.cutStart >= 0) {
        // Inside an element being cut: only the depth matters.
        if (!selfClosing) this.stack.push({ name: "", scope: parentScope });
        continue;
      }
      const tag = b.slice(lt + 1, selfClosing ? end - 2 : end - 1);
      const nameEnd = nameLength(tag);
      const qname = tag.slice(0, nameEnd);
      const name = qname.slice(qname.indexOf(":") + 1);
      const depth = this.stack.length + 1;
      if (depth === this.path.length && name === this.path[depth - 1] && this.onPath()) {
        this.skeleton.push(b.slice(this.done, lt));
        this.done = lt;
        this.cutStart = lt;
        this.cutDepth = depth;
        if (selfClosing) this.cut(end, parentScope);
        else this.stack.push({ name, scope: parentScope });
        continue;
      }
      if (!selfClosing) this.stack.push({ name, scope: scopeFromTag(tag, nameEnd, parentScope) });
    }
  }

  /** Whether the open elements are the path's first steps (checked only where the last step matches). */
  private onPath(): boolean {
    for (let i = 0; i < this.stack.length; i++) if (this.stack[i]!.name !== this.path[i]) return false;
    return true;
  }

  /** The element being cut ends at `end` in `buf`: hands it over. */
  private cut(end: number, scope: NsScope): void {
    const xml = this.buf.slice(this.cutStart, end);
    this.done = end;
    this.cutStart = -1;
    this.count++;
    this.onElement(xml, scope);
  }
}

/** Index just past `close` at or after `from`, or -1 while it has not arrived. */
function endOf(b: string, close: string, from: number): number {
  const i = b.indexOf(close, from);
  return i < 0 ? -1 : i + close.length;
}

/** Index just past the `>` closing a tag whose name starts at `from` (quoted values may hold `>`), or -1. */
function tagEnd(b: string, from: number): number {
  let i = from;
  for (;;) {
    const gt = b.indexOf(">", i);
    if (gt < 0) return -1;
    let q = -1;
    for (let j = i; j < gt; j++) {
      const c = b.charCodeAt(j);
      if (c === 0x22 || c === 0x27) {
        q = j;
        break;
      }
    }
    if (q < 0) return gt + 1;
    const close = b.indexOf(b[q]!, q + 1);
    if (close < 0) return -1;
    i = close + 1;
  }
}

function nameLength(tag: string): number {
  for (let i = 0; i < tag.length; i++) {
    const c = tag.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) return i;
  }
  return tag.length;
}

const XMLNS_ATTR = /\bxmlns(?::([^\s=]+))?\s*=\s*(?:"([^"]*)"|'([^']*)')/g;

/** The scope inside an element: its parent's, with the element's own `xmlns` declarations over it. */
function scopeFromTag(tag: string, nameEnd: number, parent: NsScope): NsScope {
  if (!tag.includes("xmlns", nameEnd)) return parent;
  let scope: Map<string, string> | undefined;
  for (const m of tag.slice(nameEnd).matchAll(XMLNS_ATTR)) {
    scope ??= new Map(parent);
    scope.set(m[1] ?? "", decodeEntities(m[2] ?? m[3] ?? ""));
  }
  return scope ?? parent;
}
