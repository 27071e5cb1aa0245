/**
 * The console's Block Kit renderer (packages/testkit/console/render.js), shared by the web page
 * and scripts/slack.mjs: what a person reads, and nothing from outside ever as markup.
 */
import { describe, expect, it } from "vitest";
// @ts-expect-error a plain ES module without types, served to the browser as it is
import * as render from "../console/render.js";

const { messageToHtml, messageToText, parseMrkdwn, viewToHtml, viewToText } = render as {
  messageToHtml(m: unknown): string;
  viewToHtml(v: unknown, errors?: Record<string, string>): string;
  viewToText(v: unknown): string;
  messageToText(m: unknown): string;
  parseMrkdwn(s: string): unknown[];
};

const info = {
  text: "DC0_H0_VM0",
  blocks: [
    { type: "section", text: { type: "mrkdwn", text: "*DC0_H0_VM0* · `/DC0/vm/DC0_H0_VM0`" }, fields: [{ type: "mrkdwn", text: "*Host*\nDC0_H0" }, { type: "mrkdwn", text: "*Datastores*\nLocalDS_0" }] },
    { type: "divider" },
    { type: "context", elements: [{ type: "mrkdwn", text: ":white_check_mark: done for <@U0002>" }] },
    { type: "actions", block_id: "confirm-x", elements: [{ type: "button", action_id: "iaas.confirm", text: { type: "plain_text", text: "Confirm" }, value: "x", style: "danger" }, { type: "button", action_id: "iaas.cancel", text: { type: "plain_text", text: "Cancel" }, value: "x" }] },
  ],
};

describe("the console's renderer", () => {
  it("prints fields as `Host: DC0_H0` and buttons as `[Confirm] [Cancel]`", () => {
    const text = messageToText(info);
    expect(text).toContain("Host: DC0_H0");
    expect(text).toContain("Datastores: LocalDS_0");
    expect(text).toContain("[Confirm] [Cancel]");
    expect(text).toContain("✅ done for @U0002");
    expect(text).not.toContain("*");
  });

  it("reads blocks sent as a JSON string (a form-encoded chat.postMessage)", () => {
    expect(messageToText({ text: "x", blocks: JSON.stringify(info.blocks) })).toContain("Host: DC0_H0");
  });

  it("renders bold, code, buttons and mentions as HTML", () => {
    const html = messageToHtml(info);
    expect(html).toContain("<strong>DC0_H0_VM0</strong>");
    expect(html).toContain("<code>/DC0/vm/DC0_H0_VM0</code>");
    expect(html).toContain('<button type="button" class="btn danger" data-block-index="3" data-action-id="iaas.confirm">Confirm</button>');
    expect(html).toContain('<hr class="block divider">');
  });

  it("decodes Slack's escapes once and escapes everything for HTML", () => {
    const html = messageToHtml({ text: "VM &lt;img src=x onerror=alert(1)&gt; &amp;amp; `&lt;b&gt;`" });
    expect(html).toContain("&lt;img src=x onerror=alert(1)&gt;");
    expect(html).not.toContain("<img");
    expect(html).toContain("&amp;amp;");
    expect(html).toContain("<code>&lt;b&gt;</code>");
    expect(messageToText({ text: "/iaas info &lt;vm&gt;" })).toBe("/iaas info <vm>");
  });

  it("makes only http(s) and mailto links live: javascript: is text", () => {
    const html = messageToHtml({ text: "<javascript:alert(1)|run> <https://example.com/?a=1&amp;b=2|ok> <data:text/html,x>" });
    expect(html).not.toMatch(/href="(javascript|data):/);
    expect(html).toContain('<span class="link-text">run</span>');
    expect(html).toContain('<a href="https://example.com/?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">ok</a>');
  });

  it("escapes quotes in attributes and unknown block types", () => {
    const html = messageToHtml({ blocks: [{ type: '"><script>', x: 1 }, { type: "actions", elements: [{ type: "button", action_id: '"><b>', text: { type: "plain_text", text: "<b>" } }] }] });
    expect(html).not.toContain("<script>");
    expect(html).not.toContain("<b>");
    expect(html).toContain('data-action-id="&quot;&gt;&lt;b&gt;"');
  });

  it("leaves a lone asterisk or underscore alone", () => {
    expect(parseMrkdwn("2 * 3 and snake_case_name")).toEqual([{ t: "text", v: "2 * 3 and snake_case_name" }]);
  });

  it("renders a view's inputs as labelled controls, the app's error beside its field, and nothing from outside as markup", () => {
    const evil = "<img src=x onerror=alert(1)>";
    const view = {
      type: "modal",
      title: { type: "plain_text", text: evil },
      submit: { type: "plain_text", text: "Create" },
      blocks: [
        { type: "input", block_id: "name", label: { type: "plain_text", text: evil }, element: { type: "plain_text_input", action_id: "v", initial_value: `"><script>x</script>` } },
        { type: "input", block_id: "size", optional: true, label: { type: "plain_text", text: "Size" }, element: { type: "static_select", action_id: "s", options: [{ text: { type: "plain_text", text: evil }, value: `" onfocus="x` }] } },
      ],
    };
    const html = viewToHtml(view, { name: evil });
    expect(html).not.toMatch(/<img|<script|" onfocus/);
    expect(html).toContain('<label for="in-0">&lt;img');
    expect(html).toContain('aria-invalid="true"');
    expect(html).toContain('<div class="field-error" id="err-0">&lt;img src=x onerror=alert(1)&gt;</div>');
    expect(html).toContain("(optional)");
    expect(viewToText(view)).toBe(`[dialog] ${evil}\n${evil}: [plain_text_input]\nSize (optional): [static_select]\n[Cancel] [Create]`);
  });
});
