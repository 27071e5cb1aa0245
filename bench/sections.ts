/**
 * Sections of docs/benchmarks.md that a run of their own writes (`--vms`, `--storm`, `--commands`):
 * each replaced in place, the rest of the document kept; and their rows in the Targets table at the
 * top, which a full run rewrites (it copies them back from the sections it keeps).
 */

/** The section titled `title` (up to the next `## `), or undefined. */
export function extractSection(doc: string, title: string): string | undefined {
  const start = doc.indexOf(title);
  if (start < 0) return undefined;
  const next = doc.indexOf("\n## ", start + title.length);
  return next >= 0 ? doc.slice(start, next + 1) : `${doc.slice(start).trimEnd()}\n`;
}

/** Puts the section into the document: in place of an earlier one, else before the misses section (else at the end). */
export function spliceSection(doc: string, title: string, section: string): string {
  const body = section.endsWith("\n") ? section : `${section}\n`;
  const start = doc.indexOf(title);
  if (start >= 0) {
    const next = doc.indexOf("\n## ", start + title.length);
    return doc.slice(0, start) + body + (next >= 0 ? doc.slice(next + 1) : "");
  }
  const misses = doc.indexOf("## Where a target is missed");
  return misses >= 0 ? doc.slice(0, misses) + body + "\n" + doc.slice(misses) : `${doc.trimEnd()}\n\n${body}`;
}

const TARGETS_HEAD = "| target | measured | |\n|---|---|---|\n";

/** The rows of a section's own targets table (the format of the one at the top). */
export function targetRowsOf(section: string): string[] {
  const at = section.indexOf(TARGETS_HEAD);
  if (at < 0) return [];
  const rows: string[] = [];
  for (const line of section.slice(at + TARGETS_HEAD.length).split("\n")) {
    if (!line.startsWith("| ")) break;
    rows.push(line);
  }
  return rows;
}

/** The first cell of a table row: a target's name. */
const keyOf = (row: string) => row.split(" | ")[0];

/** Puts rows into the Targets table at the top: in place of a row of the same target (its first cell), else appended. */
export function upsertTargets(doc: string, rows: string[]): string {
  const head = doc.indexOf("## Targets");
  const table = head >= 0 ? doc.indexOf(TARGETS_HEAD, head) : -1;
  if (table < 0 || rows.length === 0) return doc;
  const from = table + TARGETS_HEAD.length;
  let to = from;
  while (doc.startsWith("| ", to)) to = doc.indexOf("\n", to) + 1;
  const existing = doc.slice(from, to).split("\n").filter(Boolean);
  const byKey = new Map(rows.map((r) => [keyOf(r), r]));
  // A target already in the table keeps its place; a new one is appended.
  const kept = existing.map((r) => byKey.get(keyOf(r)) ?? r);
  const known = new Set(existing.map(keyOf));
  kept.push(...rows.filter((r) => !known.has(keyOf(r))));
  return doc.slice(0, from) + kept.map((r) => `${r}\n`).join("") + doc.slice(to);
}
