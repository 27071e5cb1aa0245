import { bad, Rejection } from "./reject.js";

/** How much JSON structure one request may carry; checked on the raw bytes before JSON.parse. */
export interface JsonLimits {
  /** Deepest nesting of objects and arrays. */
  maxDepth: number;
  /** Most objects, arrays and `,`-separated members or elements, all counted together. */
  maxValues: number;
}

/**
 * Measures a JSON body without parsing it: nesting depth and the number of containers and
 * separators, outside strings. JSON.parse's memory is about proportional to the values it builds
 * (a body of `{},` repeated makes an object every 3 bytes, tens of bytes of heap each), and code
 * that walks the result recurses once per level (JSON.stringify throws a RangeError some thousands
 * of levels down): a body over either limit is refused here, for the price of one pass over its
 * bytes. Multi-byte UTF-8 bytes are all >= 0x80, so they never look like structure.
 */
export function checkJsonShape(body: Uint8Array, limits: JsonLimits): void {
  let depth = 0;
  let values = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next byte (\" and \\ included)
      else if (c === 0x22) inString = false;
      continue;
    }
    switch (c) {
      case 0x22: // "
        inString = true;
        break;
      case 0x7b: // {
      case 0x5b: // [
        values++;
        if (++depth > limits.maxDepth) throw bad("too_deep", `the JSON is nested deeper than ${limits.maxDepth} levels (BRIDGE_JSON_MAX_DEPTH); vCenter events nest fewer than 10`);
        break;
      case 0x7d: // }
      case 0x5d: // ]
        depth--;
        break;
      case 0x2c: // ,
        values++;
        break;
      default:
        continue;
    }
    if (values > limits.maxValues) {
      throw new Rejection("too_many_values", `the JSON holds more than ${limits.maxValues} objects, arrays and members (BRIDGE_JSON_MAX_VALUES); a vCenter event holds a few hundred`);
    }
  }
}
