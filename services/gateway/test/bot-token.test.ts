import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "./harness.js";

// A gateway with SLACK_BOT_TOKEN: Bolt's auth.test and the chat.postMessage fallback, against
// the stand-in (SLACK_API_URL).
describe("gateway with a bot token", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ SLACK_BOT_TOKEN: "xoxb-fake-1" });
  });
  afterAll(async () => {
    await h?.close();
  });

  function idOf(json: unknown): string {
    const m = /\(request `(r-[a-z2-7]+)`\)/.exec((json as { text: string }).text);
    if (!m?.[1]) throw new Error("no request id");
    return m[1];
  }

  it("checked the token with auth.test on the configured Web API at start", () => {
    expect(h.slack.apiCalls("auth.test").length).toBeGreaterThanOrEqual(1);
  });

  it("falls back to chat.postEphemeral for the requester in the request's channel when the response_url is expired; never a public post", async () => {
    const r = await h.slash("power off web-01", { channel_id: "C0FALLBK" });
    const id = idOf(r.json);
    h.slack.responseUrlStatus = 404;
    try {
      await h.publishResult({ id, status: "progress", command: "power.off", message: "working", at: new Date().toISOString() });
      const seq = await h.publishResult({ id, status: "succeeded", command: "power.off", message: "web-01 is powered off.", at: new Date().toISOString() });
      await h.resultsAckedThrough(seq);
    } finally {
      h.slack.responseUrlStatus = 200;
    }
    // One try each (404 is permanent); the progress message is not worth a fallback.
    expect(h.slack.postsTo(r.responseUrl)).toHaveLength(2);
    const ephemeral = h.slack.apiCalls("chat.postEphemeral").filter((c) => c.body.channel === "C0FALLBK");
    expect(ephemeral.map((c) => [c.body.user, c.body.text])).toEqual([["U0ALICE", `:white_check_mark: web-01 is powered off. (request \`${id}\`)`]]);
    expect(h.slack.apiCalls("chat.postMessage").filter((c) => c.body.channel === "C0FALLBK")).toEqual([]);
  });

  it("a DM to the requester when chat.postEphemeral cannot post in the channel (the bot is not in it)", async () => {
    const r = await h.slash("power off web-04", { channel_id: "C0NOBOT", user_id: "U0DMME" });
    const id = idOf(r.json);
    h.slack.responseUrlStatus = 404;
    h.slack.postEphemeralError = "channel_not_found";
    try {
      const seq = await h.publishResult({ id, status: "succeeded", command: "power.off", message: "web-04 is powered off.", at: new Date().toISOString() });
      await h.resultsAckedThrough(seq);
    } finally {
      h.slack.responseUrlStatus = 200;
      h.slack.postEphemeralError = undefined;
    }
    expect(h.slack.apiCalls("chat.postEphemeral").filter((c) => c.body.channel === "C0NOBOT")).toHaveLength(1);
    const chat = h.slack.apiCalls("chat.postMessage").filter((c) => c.body.channel === "C0NOBOT" || c.body.channel === "U0DMME");
    expect(chat.map((c) => [c.body.channel, c.body.text])).toEqual([["U0DMME", `:white_check_mark: web-04 is powered off. (request \`${id}\`)`]]);
  });

  it("retries a response_url that fails transiently, a bounded number of times, then falls back", async () => {
    const r = await h.slash("power on web-02", { channel_id: "C0RETRY" });
    const id = idOf(r.json);
    h.slack.responseUrlStatus = 503;
    try {
      const seq = await h.publishResult({ id, status: "succeeded", command: "power.on", message: "web-02 is powered on.", at: new Date().toISOString() });
      await h.resultsAckedThrough(seq);
    } finally {
      h.slack.responseUrlStatus = 200;
    }
    expect(h.slack.postsTo(r.responseUrl)).toHaveLength(3);
    expect(h.slack.apiCalls("chat.postEphemeral").filter((c) => c.body.channel === "C0RETRY")).toHaveLength(1);
    expect(h.slack.apiCalls("chat.postMessage").filter((c) => c.body.channel === "C0RETRY")).toEqual([]);
  });

  it("uses the response_url, not the bot, while Slack accepts posts there", async () => {
    const r = await h.slash("power reset web-03", { channel_id: "C0NORMAL" });
    const id = idOf(r.json);
    const seq = await h.publishResult({ id, status: "succeeded", command: "power.reset", message: "web-03 was reset.", at: new Date().toISOString() });
    await h.resultsAckedThrough(seq);
    expect(h.slack.postsTo(r.responseUrl)).toHaveLength(1);
    expect(h.slack.apiCalls("chat.postMessage").filter((c) => c.body.channel === "C0NORMAL")).toEqual([]);
    expect(h.slack.apiCalls("chat.postEphemeral").filter((c) => c.body.channel === "C0NORMAL")).toEqual([]);
  });
});
