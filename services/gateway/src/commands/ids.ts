import { createHash } from "node:crypto";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

/** RFC 4648 base32, lower case, no padding. */
function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/**
 * The command id of a slash command: a hash of the workspace and Slack's `trigger_id`, so a
 * repeat of the same request (a Slack retry with `X-Slack-Retry-Num`, or a replay of the same
 * signed body inside the 5-minute window) gets the same id and JetStream's `Nats-Msg-Id`
 * dedupe drops it. 120 bits of SHA-256 (24 base32 characters) make a collision between two
 * different requests negligible. Fits `CommandIdSchema` and a subject token.
 */
export function commandIdFor(teamId: string, triggerId: string): string {
  const digest = createHash("sha256").update(`slack:${teamId}:${triggerId}`).digest();
  return `r-${base32(digest.subarray(0, 15))}`;
}
