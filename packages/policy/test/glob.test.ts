import { describe, expect, it } from "vitest";
import { compileGlob, globFold } from "../src/glob.js"; const MAX_GLOB_LENGTH = 255; const matchGlob = (g: string, n: string, o: { caseInsensitive: boolean }) => compileGlob(g, o).test(n);

const ci = { caseInsensitive: true };

describe("name globs", () => {
  it("* is any run, ? one character, everything else literal", () => {
    const cases: [string, string, boolean][] = [
      ["web-*", "web-01", true],
      ["web-*", "web-", true],
      ["web-*", "db-01", false],
      ["*-db", "orders-db", true],
      ["dc?-core", "dc1-core", true],
      ["dc?-core", "dc12-core", false],
      ["*", "", true],
      ["", "", true],
      ["", "a", false],
      ["a*b*c", "abc", true],
      ["a*b*c", "axxbyyc", true],
      ["a*b*c", "axxbyy", false],
      ["*.critical", "db.critical", true],
      ["*.critical", "dbxcritical", false],
      ["a.b(c)[d]+$^|{e}\\", "a.b(c)[d]+$^|{e}\\", true],
      ["?", "😀", true],
      ["??", "😀", false],
      ["**a**", "xay", true],
    ];
    for (const [glob, name, want] of cases) expect([glob, name, matchGlob(glob, name, ci)]).toEqual([glob, name, want]);
  });

  it("case-insensitive when asked, per character", () => {
    expect(matchGlob("WEB-*", "web-01", ci)).toBe(true);
    expect(matchGlob("WEB-*", "web-01", { caseInsensitive: false })).toBe(false);
    expect(matchGlob("straße-?", "STRASSE-1", ci)).toBe(false);
    expect(matchGlob("ſ*", "S1", ci)).toBe(true);
    // ASCII names take a shorter path (lower case, no per-character folding); others fold per character.
    expect(matchGlob("k*", "\u212A1", ci)).toBe(true);
    expect(matchGlob("\u212A?", "K1", ci)).toBe(true);
    expect(matchGlob("dc0_*vm4?", "DC0_C0_RP0_VM41", ci)).toBe(true);
    expect(matchGlob("dc0_*vm4?", "DC0_C0_RP0_VM41", { caseInsensitive: false })).toBe(false);
  });

  it("a pathological pattern costs at most (pattern + 1) × (name + 1) steps", () => {
    // `^.*a.*a.*a.*a.*a.*a.*a.*a.*b$` against 44 `a`s: seconds of RegExp backtracking.
    const meter = { steps: 0 };
    const name = "a".repeat(44);
    const glob = compileGlob("*a*a*a*a*a*a*a*a*b", { ...ci, meter });
    expect(glob.test(name)).toBe(false);
    expect(meter.steps).toBeGreaterThan(0);
    expect(meter.steps).toBeLessThanOrEqual((18 + 1) * (44 + 1));

    // The worst the `list` grammar and the naming rule allow: 80 characters, a long literal after a star.
    const worst = { steps: 0 };
    const long = `*${"a".repeat(60)}b*${"a?".repeat(9)}`;
    expect(compileGlob(long, { ...ci, meter: worst }).test("a".repeat(80))).toBe(false);
    expect(worst.steps).toBeLessThanOrEqual(([...long].length + 1) * 81);
  });

  it("refuses a glob longer than the limit", () => {
    expect(() => compileGlob("a".repeat(MAX_GLOB_LENGTH + 1), ci)).toThrow(RangeError);
    expect(compileGlob("*".repeat(MAX_GLOB_LENGTH), ci).test("x".repeat(80))).toBe(true);
  });

  it("every name a case-insensitive glob matches starts, folded (globFold), with the glob's prefix", () => {
    expect(compileGlob("DC0_C0*", ci).prefix).toBe("dc0_c0");
    expect(compileGlob("Web-?1*", ci).prefix).toBe("web-");
    expect(compileGlob("*web", ci).prefix).toBe("");
    expect(compileGlob("Web", ci).prefix).toBe("web");
    expect(compileGlob("Web*", { caseInsensitive: false }).prefix).toBe("Web");
    // Fixed-seed random names and globs cut from them, over characters whose folding is not ASCII's.
    const chars = ["a", "A", "k", "K", "\u212a", "s", "S", "\u017f", "\u00df", "\u1e9e", "\u0130", "i", "I", "\u00e9", "\u00c9", "_", "-", "0", "9", "\u{1f600}", "\u03a3", "\u03c3", "\u03c2"];
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    const word = () => Array.from({ length: 1 + rnd(6) }, () => chars[rnd(chars.length)]!).join("");
    let matched = 0;
    for (let i = 0; i < 20_000; i++) {
      const name = word();
      // A glob from another name's characters, or from this one's with its case changed, then a star.
      const base = rnd(2) === 0 ? word() : [...name].slice(0, 1 + rnd(3)).map((ch) => (rnd(2) ? ch.toUpperCase() : ch.toLowerCase())).join("");
      const glob = compileGlob(`${base}${rnd(2) ? "*" : "?*"}`, ci);
      if (!glob.test(name)) continue;
      matched++;
      expect([glob.source, name, globFold(name).startsWith(glob.prefix)]).toEqual([glob.source, name, true]);
    }
    expect(matched).toBeGreaterThan(300);
  });
});
