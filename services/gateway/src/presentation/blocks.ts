/**
 * Block Kit, the part the gateway uses, with Slack's limits applied where the text is built:
 * a section's text ≤ 3000 characters, a field ≤ 2000 and ≤ 10 fields, a button value ≤ 2000,
 * ≤ 50 blocks per message. https://api.slack.com/reference/block-kit/blocks
 * Every message also carries `text`: the fallback for notifications and old clients.
 */
export type TextObject = { type: "mrkdwn"; text: string } | { type: "plain_text"; text: string; emoji?: boolean };

export interface Button {
  type: "button";
  action_id: string;
  text: { type: "plain_text"; text: string; emoji?: boolean };
  value: string;
  style?: "primary" | "danger";
}

export type Block =
  | { type: "section"; text?: TextObject; fields?: TextObject[] }
  | { type: "context"; elements: TextObject[] }
  | { type: "divider" }
  | { type: "actions"; block_id?: string; elements: Button[] };

export const MAX_BLOCKS = 50;

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export function mrkdwn(text: string, max = 3000): TextObject {
  return { type: "mrkdwn", text: clip(text, max) };
}

export function section(text: string): Block {
  return { type: "section", text: mrkdwn(text) };
}

/** Label/value pairs as section fields (`*label*\nvalue`), ten to a section. */
export function fields(pairs: readonly (readonly [string, string])[]): Block[] {
  const out: Block[] = [];
  for (let i = 0; i < pairs.length; i += 10) {
    out.push({ type: "section", fields: pairs.slice(i, i + 10).map(([label, value]) => mrkdwn(`*${label}*\n${value}`, 2000)) });
  }
  return out;
}

/** A section with a heading line and fields under it. */
export function sectionWithFields(text: string, pairs: readonly (readonly [string, string])[]): Block {
  return { type: "section", text: mrkdwn(text), fields: pairs.slice(0, 10).map(([label, value]) => mrkdwn(`*${label}*\n${value}`, 2000)) };
}

export function context(text: string): Block {
  return { type: "context", elements: [mrkdwn(text)] };
}

export function button(actionId: string, label: string, value: string, style?: "primary" | "danger"): Button {
  return { type: "button", action_id: actionId, text: { type: "plain_text", text: label, emoji: true }, value, ...(style ? { style } : {}) };
}
