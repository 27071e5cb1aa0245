/**
 * Name globs as the policy and `/iaas list` use them: `*` is any run of characters (including
 * none), `?` is one character, everything else is literal. Deliberately smaller than shell or
 * picomatch globs: VM and datastore names are flat (no `/` semantics, no braces, no classes), and
 * an IT admin should not have to know which characters are special beyond these two.
 *
 * Matched by a two-pointer wildcard matcher, never by a RegExp: a pattern such as
 * `*a*a*a*a*a*a*a*a*b` compiled to `^.*a.*a…b$` backtracks exponentially against a long run of
 * `a`s, and a user types the `list` pattern. Here a mismatch only moves back to the last `*`,
 * whose start only moves forward, so the work is at most (pattern + 1) × (name + 1) steps.
 * Characters are Unicode code points, so `?` is one character even outside the BMP.
 */
export type Glob = {
  readonly source: string;
  /**
   * The literal characters before the first `*` or `?`, folded as names are (`globFold`) when the
   * glob is case-insensitive: every name it matches, so folded, starts with it. An index sorted by
   * folded name finds a glob's candidates as one range.
   */
  readonly prefix: string;
  test(name: string): boolean;
};

/** The longest glob accepted: the policy's limit; the `list` grammar allows less. */
export const MAX_GLOB_LENGTH = 255;

export interface GlobOptions {
  caseInsensitive: boolean;
  /** Counts the matcher's steps (tests measure the bound with it; nothing else needs it). */
  meter?: { steps: number };
}

export function compileGlob(source: string, opts: GlobOptions): Glob {
  const pattern = [...source];
  if (pattern.length > MAX_GLOB_LENGTH) throw new RangeError(`a glob may have at most ${MAX_GLOB_LENGTH} characters, this one has ${pattern.length}`);
  const fold = opts.caseInsensitive ? foldCase : (s: string) => s;
  const folded = pattern.map((ch) => (ch === "*" || ch === "?" ? ch : fold(ch)));
  // An ASCII name (most VM names) is its own list of code points, and lower case is its folding:
  // no per-character work before matching, which a walk of 10,000 names per `list` would feel.
  const foldName = opts.caseInsensitive
    ? (name: string) => (ASCII.test(name) ? name.toLowerCase() : [...name].map(fold))
    : (name: string) => (ASCII.test(name) ? name : [...name]);
  const wild = folded.findIndex((ch) => ch === "*" || ch === "?");
  const prefix = (wild < 0 ? folded : folded.slice(0, wild)).join("");
  return { source, prefix, test: (name) => matchFolded(folded, foldName(name), opts.meter) };
}

/**
 * A name as a case-insensitive glob compares it, as one string (each code point folded, as
 * `compileGlob` does): a case-insensitive glob that matches `name` has a `prefix` that
 * `globFold(name)` starts with.
 */
export function globFold(name: string): string {
  return ASCII.test(name) ? name.toLowerCase() : [...name].map(foldCase).join("");
}

/** One match without keeping the compiled glob: `matchGlob("web-*", "web-01", { caseInsensitive: true })`. */
export function matchGlob(source: string, name: string, opts: GlobOptions): boolean {
  return compileGlob(source, opts).test(name);
}

export function matchesAny(globs: readonly Glob[], name: string): Glob | undefined {
  return globs.find((g) => g.test(name));
}

// Simple per-character folding, as a case-insensitive Unicode RegExp does it (`K` the Kelvin sign
// is `k`, `ſ` is `s`), without changing the number of characters (`ß` stays one).
function foldCase(ch: string): string {
  const lower = ch.toLowerCase();
  if ([...lower].length !== 1) return ch;
  const upper = lower.toUpperCase();
  return [...upper].length === 1 ? upper.toLowerCase() : lower;
}

const ASCII = /^[\x00-\x7f]*$/;

function matchFolded(p: readonly string[], s: ArrayLike<string>, meter?: { steps: number }): boolean {
  let pi = 0;
  let si = 0;
  // Where the last `*` was, and the first name character it does not yet cover.
  let star = -1;
  let resume = 0;
  while (si < s.length) {
    if (meter) meter.steps++;
    const pc = p[pi];
    if (pc === "*") {
      star = pi++;
      resume = si;
    } else if (pc !== undefined && (pc === "?" || pc === s[si])) {
      pi++;
      si++;
    } else if (star >= 0) {
      // Let the last `*` take one more character and try the rest of the pattern again.
      pi = star + 1;
      si = ++resume;
    } else {
      return false;
    }
  }
  while (p[pi] === "*") pi++;
  return pi === p.length;
}
