import { z } from "zod";

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
type Unit = keyof typeof UNIT_MS;

/** The longest duration anything takes (a lease, a snapshot's age): 10 years. */
export const MAX_DURATION_MS = 3650 * UNIT_MS.d;

/**
 * A duration as people write it: a whole number and one unit, `30d`, `12h`, `5m`, `45s`
 * (seconds exist so tests need not wait minutes). Shared by the policy (leases, snapshot
 * retention) and the `/iaas` grammar (`lease=7d`, `extend web-01 14d`).
 */
export const DURATION_PATTERN = /^([0-9]{1,7})([smhd])$/;

/**
 * A duration's length in ms, or why it is not one: a string naming the problem (`0d` is no
 * duration, `7x` has no unit, `999999d` is more than 10 years), for the caller to put in its own
 * message.
 */
export function parseDuration(text: string): number | string {
  const m = DURATION_PATTERN.exec(text.trim().toLowerCase());
  if (!m) return `\`${text.slice(0, 40)}\` is not a duration: write a whole number and a unit (s, m, h or d), for example \`30d\`, \`12h\` or \`5m\``;
  const ms = Number(m[1]) * UNIT_MS[m[2] as Unit];
  if (ms <= 0) return `\`${text}\` is no time at all: a duration is at least \`1s\``;
  if (ms > MAX_DURATION_MS) return `\`${text}\` is more than 10 years`;
  return ms;
}

/** A duration in a policy file or a message: `30d`, `12h`, `5m`, `45s`. */
export const DurationSchema = z.string().transform((s, ctx) => {
  const ms = parseDuration(s);
  if (typeof ms === "string") {
    ctx.addIssue({ code: "custom", message: ms });
    return z.NEVER;
  }
  return ms;
});

/**
 * A length of time in words, to the two largest units: `3 days 4 hours`, `12 minutes`,
 * `45 seconds`; `0 seconds` for anything under a second (and for negative values).
 */
export function formatDuration(ms: number): string {
  if (!(ms >= 1000)) return "0 seconds";
  const parts: string[] = [];
  let rest = Math.floor(ms / 1000);
  for (const [unit, secs] of [["day", 86_400], ["hour", 3_600], ["minute", 60], ["second", 1]] as const) {
    const n = Math.floor(rest / secs);
    rest -= n * secs;
    if (n > 0) parts.push(`${n} ${unit}${n === 1 ? "" : "s"}`);
    if (parts.length === 2) break;
    if (parts.length === 1 && n === 0) break;
  }
  return parts.join(" ");
}
