/**
 * Name globs as the policy uses them: `*` is any run of characters (including none), `?` is one
 * character, everything else is literal. Deliberately smaller than shell or picomatch globs: VM
 * and datastore names are flat (no `/` semantics, no braces, no classes), and an IT admin should
 * not have to know which characters are special beyond these two.
 */
export type Glob = { readonly source: string; test(name: string): boolean };

export function compileGlob(source: string, opts: { caseInsensitive: boolean }): Glob {
  const body = [...source]
    .map((ch) => (ch === "*" ? ".*" : ch === "?" ? "." : ch.replace(/[\\^$.|+()[\]{}]/g, "\\$&")))
    .join("");
  const re = new RegExp(`^${body}$`, opts.caseInsensitive ? "isu" : "su");
  return { source, test: (name) => re.test(name) };
}

export function matchesAny(globs: readonly Glob[], name: string): Glob | undefined {
  return globs.find((g) => g.test(name));
}
