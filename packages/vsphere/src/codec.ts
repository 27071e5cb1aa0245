import { ProtocolError } from "./errors.js";
import { PRIMITIVES, isSubtype, typeDef, type FieldDef } from "./schema.js";
import { isMoRef } from "./types.js";
import {
  childEntries,
  escapeAttr,
  escapeText,
  scopeOf,
  textOf,
  xsiTypeOf,
  type NsScope,
  type XNode,
} from "./xml.js";

/**
 * A value for an `xsd:anyType` slot (OptionValue.value, PropertyChange.val) with an explicit XSD
 * type, e.g. `{ _type: "xsd:long", value: 5 }`. Plain strings, booleans, numbers and MoRefs get an
 * xsi:type inferred.
 */
export interface XsdValue {
  _type: `xsd:${string}`;
  value: string | number | boolean;
}

/** Maps `ArrayOfX` to the element type X (with the primitive spellings the schema table uses). */
function arrayElementType(arrayType: string): string {
  const elem = arrayType.slice("ArrayOf".length);
  if (elem === "ManagedObjectReference") return "MoRef";
  if (elem === "AnyType") return "any";
  const lower = elem.charAt(0).toLowerCase() + elem.slice(1);
  return PRIMITIVES.has(lower) ? lower : elem;
}

/** `xsd:int` → `int`, `ManagedObjectReference` → `MoRef`; undefined for data object types. */
function primitiveOf(type: string): string | undefined {
  if (type.startsWith("xsd:")) return type.slice(4);
  if (type === "ManagedObjectReference") return "MoRef";
  return PRIMITIVES.has(type) && type !== "any" ? type : undefined;
}

// ---------------------------------------------------------------- encoding

function encodePrimitive(name: string, value: unknown, prim: string, xsiType?: string): string {
  const attr = xsiType ? ` xsi:type="${xsiType}"` : "";
  let text: string;
  switch (prim) {
    case "int":
    case "long":
    case "short":
    case "byte":
      if (typeof value !== "number" || !Number.isSafeInteger(value)) {
        throw new TypeError(`${name}: expected an integer, got ${JSON.stringify(value)}`);
      }
      text = String(value);
      break;
    case "double":
    case "float":
      if (typeof value !== "number" || !Number.isFinite(value)) {
        throw new TypeError(`${name}: expected a number, got ${JSON.stringify(value)}`);
      }
      text = String(value);
      break;
    case "boolean":
      if (typeof value !== "boolean") throw new TypeError(`${name}: expected a boolean, got ${JSON.stringify(value)}`);
      text = value ? "true" : "false";
      break;
    case "dateTime":
      if (value instanceof Date) text = value.toISOString();
      else if (typeof value === "string") text = value;
      else throw new TypeError(`${name}: expected a Date or ISO string`);
      break;
    default:
      if (typeof value !== "string") throw new TypeError(`${name}: expected a string, got ${JSON.stringify(value)}`);
      text = value;
  }
  return `<${name}${attr}>${escapeText(text)}</${name}>`;
}

function encodeMoRef(name: string, value: unknown, withXsiType: boolean): string {
  if (!isMoRef(value)) throw new TypeError(`${name}: expected a MoRef {type, value}, got ${JSON.stringify(value)}`);
  const xsi = withXsiType ? ` xsi:type="ManagedObjectReference"` : "";
  return `<${name}${xsi} type="${escapeAttr(value.type)}">${escapeText(value.value)}</${name}>`;
}

/** Infers an xsi:type for a value in an `xsd:anyType` slot. */
function encodeAny(name: string, value: unknown): string {
  if (typeof value === "string") return encodePrimitive(name, value, "string", "xsd:string");
  if (typeof value === "boolean") return encodePrimitive(name, value, "boolean", "xsd:boolean");
  if (typeof value === "number") {
    if (Number.isInteger(value)) {
      const small = Math.abs(value) < 2 ** 31;
      return encodePrimitive(name, value, small ? "int" : "long", small ? "xsd:int" : "xsd:long");
    }
    return encodePrimitive(name, value, "double", "xsd:double");
  }
  if (isMoRef(value)) return encodeMoRef(name, value, true);
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === "string")) {
      return `<${name} xsi:type="ArrayOfString">${value.map((v) => encodePrimitive("string", v, "string")).join("")}</${name}>`;
    }
    throw new TypeError(`${name}: only string arrays can be sent as xsd:anyType`);
  }
  if (typeof value === "object" && value !== null) {
    const t = (value as { _type?: unknown })._type;
    if (typeof t === "string" && t.startsWith("xsd:")) {
      const v = (value as XsdValue).value;
      return encodePrimitive(name, v, t.slice(4), t);
    }
    if (typeof t === "string") return encodeObject(name, value as Record<string, unknown>, t);
  }
  throw new TypeError(`${name}: cannot infer an xsi:type for ${JSON.stringify(value)}`);
}

function encodeObject(name: string, value: Record<string, unknown>, declared: string): string {
  const explicit = typeof value._type === "string" ? value._type : undefined;
  const actual = explicit ?? declared;
  if (explicit !== undefined && declared !== "any" && !isSubtype(explicit, declared)) {
    throw new TypeError(`${name}: ${explicit} is not a ${declared}`);
  }
  const def = typeDef(actual);
  if (def === undefined) throw new TypeError(`${name}: no schema for type ${actual}`);
  for (const key of Object.keys(value)) {
    if (key !== "_type" && value[key] !== undefined && !def.byName.has(key)) {
      throw new TypeError(`${name}: ${actual} has no field ${key} (or this client does not support it)`);
    }
  }
  const body = def.fields.map((f) => encodeField(f, value[f.name])).join("");
  // xsi:type is sent whenever the caller named a type: required for polymorphic slots
  // (VirtualDevice, OptionValue, SelectionSpec), harmless elsewhere.
  const attr = explicit !== undefined ? ` xsi:type="${escapeAttr(explicit)}"` : "";
  return `<${name}${attr}>${body}</${name}>`;
}

function encodeField(f: FieldDef, value: unknown): string {
  if (value === undefined || value === null) return "";
  if (f.array) {
    if (!Array.isArray(value)) throw new TypeError(`${f.name}: expected an array`);
    return value.map((v) => encodeValue(f.name, v, f.type)).join("");
  }
  return encodeValue(f.name, value, f.type);
}

/**
 * Encodes one element named `name` holding `value` of schema type `type` (a primitive, `MoRef`,
 * `any` or a data object type; `X[]` for a repeated element). Undefined and null encode to nothing.
 */
export function encodeValue(name: string, value: unknown, type: string): string {
  if (value === undefined || value === null) return "";
  if (type.endsWith("[]")) {
    if (!Array.isArray(value)) throw new TypeError(`${name}: expected an array`);
    const elem = type.slice(0, -2);
    return value.map((v) => encodeValue(name, v, elem)).join("");
  }
  if (type === "any") return encodeAny(name, value);
  if (type === "MoRef") return encodeMoRef(name, value, false);
  const prim = primitiveOf(type);
  if (prim !== undefined) return encodePrimitive(name, value, prim);
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new TypeError(`${name}: expected a ${type} object, got ${JSON.stringify(value)}`);
  }
  return encodeObject(name, value as Record<string, unknown>, type);
}

// ---------------------------------------------------------------- decoding

function coerce(text: string, prim: string, where: string): unknown {
  switch (prim) {
    case "int":
    case "long":
    case "short":
    case "byte":
    case "double":
    case "float": {
      const n = Number(text);
      if (text.trim() === "" || Number.isNaN(n)) throw new ProtocolError(`${where}: ${JSON.stringify(text)} is not a number`);
      return n;
    }
    case "boolean":
      if (text === "true" || text === "1") return true;
      if (text === "false" || text === "0") return false;
      throw new ProtocolError(`${where}: ${JSON.stringify(text)} is not a boolean`);
    default:
      // string, dateTime (kept as its ISO text), base64Binary, anyURI, enums
      return text;
  }
}

function lookupField(name: string, types: Array<string | undefined>): FieldDef | undefined {
  for (const t of types) {
    if (t === undefined) continue;
    const f = typeDef(t)?.byName.get(name);
    if (f !== undefined) return f;
  }
  return undefined;
}

/**
 * Decodes an element into plain JS: MoRefs as `{type, value}`, numbers and booleans by xsi:type or
 * schema, data objects as objects with `_type` when the wire named one, `ArrayOfX` as arrays. When
 * the xsi:type is not in the schema table, the declared type's fields still drive coercion (an
 * unknown `VmPoweredOnEvent` decodes its `key` as the `Event` it is declared as).
 */
export function decodeNode(node: XNode, parentScope: NsScope, declared: string | undefined, where = ""): unknown {
  const scope = scopeOf(node, parentScope);
  const xsiType = xsiTypeOf(node, scope);
  const type = xsiType ?? declared;

  if (type !== undefined && type.startsWith("ArrayOf")) {
    const elem = arrayElementType(type);
    return childEntries(node).flatMap(([name, nodes]) => nodes.map((n) => decodeNode(n, scope, elem, `${where}/${name}`)));
  }

  const kids = childEntries(node);
  const attrType = node["@_type"];
  const prim = type === undefined ? undefined : primitiveOf(type);
  if (prim === "MoRef" || (typeof attrType === "string" && kids.length === 0)) {
    return { type: typeof attrType === "string" ? attrType : "", value: textOf(node) };
  }
  if (prim !== undefined) return coerce(textOf(node), prim, where);

  if (kids.length === 0) {
    const known = type !== undefined && typeDef(type) !== undefined;
    const text = textOf(node);
    // An empty element typed as a data object is an object with no set fields (e.g. a fault with
    // no properties); a non-empty one with an unknown type is an enum value.
    if (known || (xsiType !== undefined && text === "")) return xsiType !== undefined ? { _type: xsiType } : {};
    return text;
  }

  const out: Record<string, unknown> = {};
  if (xsiType !== undefined) out._type = xsiType;
  for (const [name, nodes] of kids) {
    const f = lookupField(name, [xsiType, declared]);
    const vals = nodes.map((n) => decodeNode(n, scope, f?.type, `${where}/${name}`));
    out[name] = f?.array ? vals : vals.length === 1 ? vals[0] : vals;
  }
  return out;
}
