// Slack's Block Kit and mrkdwn, the part iaas sends, rendered two ways from one parse: as HTML for
// the local web console and as plain text for the terminal console (scripts/slack.mjs).
// Plain ES module, no dependencies: the browser loads it as it is, Node imports it by path.
// Safety: every piece of text is HTML-escaped on output, and only http(s) and mailto links become
// live links; anything else (`javascript:`, `data:`) is shown as its text.
// https://api.slack.com/reference/surfaces/formatting

/** The emoji codes iaas and Slack's own messages use; an unknown code stays as its `:name:`. */
const EMOJI = {
  white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", warning: "⚠️", hourglass: "⌛", hourglass_flowing_sand: "⏳",
  red_circle: "🔴", large_green_circle: "🟢", green_circle: "🟢", white_circle: "⚪", black_circle: "⚫", no_entry: "⛔",
  no_entry_sign: "🚫", information_source: "ℹ️", bulb: "💡", lock: "🔒", key: "🔑", wastebasket: "🗑️", rocket: "🚀",
  computer: "💻", desktop_computer: "🖥️", gear: "⚙️", bell: "🔔", rotating_light: "🚨", mag: "🔍", clipboard: "📋",
  arrows_counterclockwise: "🔄", zzz: "💤", skull: "💀", tada: "🎉", thumbsup: "👍", "+1": "👍", eyes: "👀", stop_sign: "🛑",
};

/** Slack's three escapes, decoded once (`&amp;lt;` is the text `&lt;`). */
export function decodeEscapes(s) {
  return String(s).replace(/&(lt|gt|amp);/g, (_, e) => ({ lt: "<", gt: ">", amp: "&" })[e]);
}

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** A link target worth making live; everything else renders as text. */
export function safeHref(url) {
  return /^(https?:\/\/|mailto:)/i.test(url) ? url : undefined;
}

/**
 * mrkdwn → a list of nodes: { t: "text", v } | { t: "code", v } | { t: "pre", v } | { t: "b"|"i"|"s", c: nodes }
 * | { t: "link", href?, label } | { t: "user", id } | { t: "group", id } | { t: "special", v }.
 * Text values are already unescaped (what a person reads).
 */
export function parseMrkdwn(src) {
  const out = [];
  const s = String(src ?? "");
  let i = 0;
  let text = "";
  const flush = () => {
    if (text) out.push({ t: "text", v: decodeEscapes(emoji(text)) });
    text = "";
  };
  while (i < s.length) {
    const c = s[i];
    if (s.startsWith("```", i)) {
      const end = s.indexOf("```", i + 3);
      if (end > i) {
        flush();
        out.push({ t: "pre", v: decodeEscapes(s.slice(i + 3, end).replace(/^\n/, "")) });
        i = end + 3;
        continue;
      }
    }
    if (c === "`") {
      const end = s.indexOf("`", i + 1);
      if (end > i + 1 && !s.slice(i + 1, end).includes("\n")) {
        flush();
        out.push({ t: "code", v: decodeEscapes(s.slice(i + 1, end)) });
        i = end + 1;
        continue;
      }
    }
    if (c === "<") {
      const end = s.indexOf(">", i + 1);
      if (end > i + 1) {
        flush();
        const inner = s.slice(i + 1, end);
        const bar = inner.indexOf("|");
        const target = bar >= 0 ? inner.slice(0, bar) : inner;
        const label = bar >= 0 ? inner.slice(bar + 1) : undefined;
        if (target.startsWith("@")) out.push({ t: "user", id: target.slice(1), label: label && decodeEscapes(label) });
        else if (target.startsWith("!subteam^")) out.push({ t: "group", id: target.slice("!subteam^".length), label: label && decodeEscapes(label) });
        else if (target.startsWith("#")) out.push({ t: "channel", id: target.slice(1), label: label && decodeEscapes(label) });
        else if (target.startsWith("!")) out.push({ t: "special", v: `@${target.slice(1)}` });
        else {
          const url = decodeEscapes(target);
          out.push({ t: "link", href: safeHref(url), label: decodeEscapes(label ?? target) });
        }
        i = end + 1;
        continue;
      }
    }
    const mark = { "*": "b", _: "i", "~": "s" }[c];
    // A style opens at a word's start and closes before a word's end, on the same line.
    if (mark && (i === 0 || /[\s(\[{>"'-]/.test(s[i - 1])) && s[i + 1] && !/\s/.test(s[i + 1])) {
      let end = i + 1;
      for (;;) {
        end = s.indexOf(c, end);
        if (end < 0 || s.slice(i + 1, end).includes("\n")) {
          end = -1;
          break;
        }
        if (!/\s/.test(s[end - 1]) && (end + 1 >= s.length || !/[A-Za-z0-9]/.test(s[end + 1]))) break;
        end += 1;
      }
      if (end > i + 1) {
        flush();
        out.push({ t: mark, c: parseMrkdwn(s.slice(i + 1, end)) });
        i = end + 1;
        continue;
      }
    }
    text += c;
    i += 1;
  }
  flush();
  return out;
}

function emoji(s) {
  return s.replace(/:([a-z0-9_+-]+):/g, (m, name) => EMOJI[name] ?? m);
}

/** Display names for user ids (the console's people); an unknown id shows as itself. */
let people = {};
export function setPeople(map) {
  people = { ...map };
}
const personName = (id, label) => label || people[id] || id;

function nodesToHtml(nodes) {
  return nodes
    .map((n) => {
      switch (n.t) {
        case "text":
          return escapeHtml(n.v).replace(/\n/g, "<br>");
        case "code":
          return `<code>${escapeHtml(n.v)}</code>`;
        case "pre":
          return `<pre>${escapeHtml(n.v)}</pre>`;
        case "b":
          return `<strong>${nodesToHtml(n.c)}</strong>`;
        case "i":
          return `<em>${nodesToHtml(n.c)}</em>`;
        case "s":
          return `<del>${nodesToHtml(n.c)}</del>`;
        case "link":
          return n.href ? `<a href="${escapeHtml(n.href)}" target="_blank" rel="noopener noreferrer">${escapeHtml(n.label)}</a>` : `<span class="link-text">${escapeHtml(n.label)}</span>`;
        case "user":
          return `<span class="mention">@${escapeHtml(personName(n.id, n.label))}</span>`;
        case "group":
          return `<span class="mention">@${escapeHtml(n.label || n.id)}</span>`;
        case "channel":
          return `<span class="mention">#${escapeHtml(n.label || n.id)}</span>`;
        default:
          return `<span class="mention">${escapeHtml(n.v)}</span>`;
      }
    })
    .join("");
}

function nodesToText(nodes) {
  return nodes
    .map((n) => {
      switch (n.t) {
        case "text":
          return n.v;
        case "code":
        case "pre":
          return n.v;
        case "b":
        case "i":
        case "s":
          return nodesToText(n.c);
        case "link":
          return n.href && n.label !== n.href ? `${n.label} (${n.href})` : n.label;
        case "user":
          return `@${personName(n.id, n.label)}`;
        case "group":
          return `@${n.label || n.id}`;
        case "channel":
          return `#${n.label || n.id}`;
        default:
          return n.v;
      }
    })
    .join("");
}

/** A text object (mrkdwn or plain_text) as HTML. */
export function textToHtml(obj) {
  if (!obj) return "";
  if (obj.type === "plain_text") return escapeHtml(obj.emoji === false ? obj.text : emoji(obj.text ?? "")).replace(/\n/g, "<br>");
  return nodesToHtml(parseMrkdwn(obj.text));
}

/** A text object as plain text. */
export function textToText(obj) {
  if (!obj) return "";
  if (obj.type === "plain_text") return obj.emoji === false ? obj.text : emoji(obj.text ?? "");
  return nodesToText(parseMrkdwn(obj.text));
}

/** A message's blocks: an array, or the JSON string a form-encoded Web API call carries. */
export function blocksOf(message) {
  let b = message?.blocks;
  if (typeof b === "string") {
    try {
      b = JSON.parse(b);
    } catch {
      b = undefined;
    }
  }
  return Array.isArray(b) ? b.filter((x) => x && typeof x === "object") : [];
}

/** The buttons of a message's actions blocks, with the block they sit in. */
export function buttonsOf(message) {
  return blocksOf(message).flatMap((b) => (b.type === "actions" ? (b.elements ?? []).filter((e) => e.type === "button").map((e) => ({ block_id: b.block_id, ...e })) : []));
}

/**
 * A message's blocks as HTML. Buttons are `<button data-action-id data-block-index>`s: the page wires
 * the clicks. Without blocks, the fallback `text` as mrkdwn.
 */
export function messageToHtml(message) {
  const blocks = blocksOf(message);
  if (!blocks.length) return `<div class="block section">${textToHtml({ type: "mrkdwn", text: message.text ?? "" })}</div>`;
  return blocks.map((b, bi) => blockToHtml(b, bi, {})).join("");
}

/**
 * A view's blocks (a modal's, a Home tab's) as HTML: the message blocks, and input blocks as
 * labelled form controls (`data-block-id`, `data-action-id`, `data-type` on each) with the error
 * the app answered for that block (`errors`: block_id → message) beside it.
 */
export function viewToHtml(view, errors = {}) {
  return blocksOf(view).map((b, bi) => blockToHtml(b, bi, errors)).join("");
}

function blockToHtml(b, bi, errors) {
  switch (b.type) {
    case "header":
      return `<h3 class="block header">${textToHtml(b.text)}</h3>`;
    case "divider":
      return `<hr class="block divider">`;
    case "context":
      return `<div class="block context">${(b.elements ?? []).map((e) => (e.type === "image" ? `<span class="img-alt">${escapeHtml(e.alt_text ?? "")}</span>` : `<span>${textToHtml(e)}</span>`)).join(" ")}</div>`;
    case "section": {
      const text = b.text ? `<div class="text">${textToHtml(b.text)}</div>` : "";
      const fields = b.fields?.length ? `<div class="fields">${b.fields.map((f) => `<div class="field">${textToHtml(f)}</div>`).join("")}</div>` : "";
      const acc = b.accessory?.type === "button" ? `<div class="accessory">${buttonHtml(b.accessory, b.block_id, bi)}</div>` : b.accessory && b.accessory.type !== "image" ? `<div class="accessory unsupported">(${escapeHtml(b.accessory.type)})</div>` : "";
      return `<div class="block section">${text}${fields}${acc}</div>`;
    }
    case "actions":
      return `<div class="block actions">${(b.elements ?? []).map((e) => (e.type === "button" ? buttonHtml(e, b.block_id, bi) : `<span class="unsupported">(${escapeHtml(e.type)})</span>`)).join("")}</div>`;
    case "input":
      return inputHtml(b, bi, errors[b.block_id]);
    default:
      return `<div class="block unknown">(${escapeHtml(b.type)} block)</div>`;
  }
}

const TEXT_INPUTS = { plain_text_input: "text", email_text_input: "email", url_text_input: "url", number_input: "number" };

function optionHtml(o, selected) {
  const value = String(o?.value ?? "");
  return `<option value="${escapeHtml(value)}"${selected === value ? " selected" : ""}>${escapeHtml(textToText(o?.text))}</option>`;
}

/** A static select's options and option groups, the initial one selected. */
export function optionsHtml(options = [], groups = [], selected) {
  return options.map((o) => optionHtml(o, selected)).join("") + groups.map((g) => `<optgroup label="${escapeHtml(textToText(g.label))}">${(g.options ?? []).map((o) => optionHtml(o, selected)).join("")}</optgroup>`).join("");
}

function inputHtml(b, bi, error) {
  const e = b.element ?? {};
  const id = `in-${bi}`;
  const label = textToText(b.label);
  const describedBy = [`err-${bi}`, ...(b.hint ? [`hint-${bi}`] : [])].join(" ");
  const attrs = `id="${id}" name="${escapeHtml(b.block_id ?? "")}" data-block-id="${escapeHtml(b.block_id ?? "")}" data-action-id="${escapeHtml(e.action_id ?? "")}" data-type="${escapeHtml(e.type ?? "")}"${b.optional ? "" : ' aria-required="true"'} aria-describedby="${describedBy}"${error ? ' aria-invalid="true"' : ""}`;
  const placeholder = e.placeholder ? textToText(e.placeholder) : "";
  const choose = `<option value="">${escapeHtml(placeholder || "Select an option")}</option>`;
  let control;
  if (TEXT_INPUTS[e.type]) {
    const ph = placeholder ? ` placeholder="${escapeHtml(placeholder)}"` : "";
    const max = Number.isInteger(e.max_length) ? ` maxlength="${e.max_length}"` : "";
    const min = Number.isInteger(e.min_length) ? ` data-min-length="${e.min_length}"` : "";
    const num = e.type === "number_input" ? `${e.is_decimal_allowed ? ' step="any"' : ' step="1"'}${e.min_value !== undefined ? ` min="${escapeHtml(e.min_value)}"` : ""}${e.max_value !== undefined ? ` max="${escapeHtml(e.max_value)}"` : ""}` : "";
    const initial = String(e.initial_value ?? "");
    control = e.multiline ? `<textarea ${attrs}${ph}${max}${min} rows="4">${escapeHtml(initial)}</textarea>` : `<input type="${TEXT_INPUTS[e.type]}" ${attrs}${ph}${max}${min}${num} value="${escapeHtml(initial)}">`;
  } else if (e.type === "static_select") {
    control = `<select ${attrs}>${choose}${optionsHtml(e.options, e.option_groups, e.initial_option?.value)}</select>`;
  } else if (e.type === "users_select") {
    const selected = e.initial_user;
    control = `<select ${attrs}>${choose}${Object.entries(people).map(([uid, name]) => `<option value="${escapeHtml(uid)}"${uid === selected ? " selected" : ""}>${escapeHtml(name)}</option>`).join("")}</select>`;
  } else if (e.type === "external_select") {
    // The options come from the app (block_suggestion) as the person types, as in Slack.
    const min = Number.isInteger(e.min_query_length) ? e.min_query_length : 3;
    const initial = e.initial_option ? optionHtml(e.initial_option, String(e.initial_option.value ?? "")) : "";
    control = `<input type="search" class="suggest" data-suggest-for="${id}" data-min-query="${min}" aria-label="Search ${escapeHtml(label)}" placeholder="${min > 0 ? `Type ${min}+ characters to search` : "Type to search"}"><select ${attrs} data-min-query="${min}">${choose}${initial}</select>`;
  } else {
    control = `<span class="unsupported" id="${id}">(a ${escapeHtml(e.type)} input: the console does not show this kind)</span>`;
  }
  const hint = b.hint ? `<div class="hint" id="hint-${bi}">${escapeHtml(textToText(b.hint))}</div>` : "";
  const optional = b.optional ? ' <span class="optional">(optional)</span>' : "";
  return `<div class="block input${error ? " invalid" : ""}"><label for="${id}">${escapeHtml(label)}${optional}</label>${control}${hint}<div class="field-error" id="err-${bi}">${error ? escapeHtml(error) : ""}</div></div>`;
}

function buttonHtml(e, blockId, blockIndex) {
  const style = e.style === "primary" || e.style === "danger" ? ` ${e.style}` : "";
  return `<button type="button" class="btn${style}" data-block-index="${blockIndex}" data-action-id="${escapeHtml(e.action_id ?? "")}">${escapeHtml(textToText(e.text))}</button>`;
}

/** A modal as text, for a terminal that cannot show it: its title, blocks, inputs as `Label: [ ]`. */
export function viewToText(view) {
  const lines = [`[dialog] ${textToText(view?.title)}`];
  for (const b of blocksOf(view)) {
    if (b.type === "input") lines.push(`${textToText(b.label)}${b.optional ? " (optional)" : ""}: [${b.element?.type ?? "input"}]`);
    else lines.push(messageToText({ blocks: [b] }));
  }
  const buttons = [view?.close ?? { type: "plain_text", text: "Cancel" }, view?.submit].filter(Boolean).map((t) => `[${textToText(t)}]`);
  lines.push(buttons.join(" "));
  return lines.join("\n");
}

/** A message's blocks as lines of text: fields as `Host: DC0_H0`, buttons as `[Confirm] [Cancel]`. */
export function messageToText(message) {
  const blocks = blocksOf(message);
  if (!blocks.length) return textToText({ type: "mrkdwn", text: message.text ?? "" });
  const lines = [];
  for (const b of blocks) {
    switch (b.type) {
      case "header":
        lines.push(textToText(b.text).toUpperCase());
        break;
      case "divider":
        lines.push("—".repeat(24));
        break;
      case "context":
        lines.push((b.elements ?? []).map((e) => (e.type === "image" ? e.alt_text ?? "" : textToText(e))).join(" "));
        break;
      case "section":
        if (b.text) lines.push(textToText(b.text));
        for (const f of b.fields ?? []) lines.push(fieldToText(f));
        if (b.accessory?.type === "button") lines.push(`[${textToText(b.accessory.text)}]`);
        break;
      case "actions":
        lines.push((b.elements ?? []).filter((e) => e.type === "button").map((e) => `[${textToText(e.text)}]`).join(" "));
        break;
      default:
        lines.push(`(${b.type} block)`);
    }
  }
  return lines.join("\n");
}

/** A field `*Host*\nDC0_H0` as `Host: DC0_H0`. */
function fieldToText(f) {
  const t = textToText(f);
  const nl = t.indexOf("\n");
  return nl >= 0 ? `${t.slice(0, nl)}: ${t.slice(nl + 1).replace(/\n/g, ", ")}` : t;
}
