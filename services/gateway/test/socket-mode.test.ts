import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, connectNats, createLogger, createMetrics, loadConfig } from "@iaas/runtime";
import { SlackStandIn, slashCommandPayload, startNatsServer, waitUntil } from "@iaas/testkit";
import { buildGateway, ensureGatewayResources, GatewayEnvSchema } from "../src/mod.js";
import { SECRET, startHarness, testPolicy, type Harness } from "./harness.js";

/** An obviously fake app-level token: real ones are far longer. */
const APP_TOKEN = "xapp-fake-1";

/**
 * Socket Mode against the Slack stand-in's Socket Mode side: the gateway calls
 * apps.connections.open on SLACK_API_URL with the app token, connects to the ws:// URL it gets,
 * and takes envelopes there, acking each over the socket. Bolt's own Socket Mode client, undici's
 * WebSocket, a real nats-server.
 */
describe("gateway over Socket Mode", () => {
  let h: Harness;
  beforeAll(async () => {
    // With a bot token too, as a Socket Mode app usually runs (auth.test at start, on SLACK_API_URL as well).
    h = await startHarness({ SLACK_APP_TOKEN: APP_TOKEN, SLACK_BOT_TOKEN: "xoxb-fake-1" }, { slackOptions: { appToken: APP_TOKEN } });
  });
  afterAll(async () => {
    await h?.close();
  });

  /** `/iaas <text>` as a `slash_commands` envelope; the gateway's ack, read back from the socket. */
  const slash = async (text: string) => {
    const responseUrl = h.slack.responseUrl();
    const envelopeId = h.slack.sendEnvelope("slash_commands", slashCommandPayload({ text, user_id: "U0ALICE", team_id: "T0TEAM", channel_id: "C0OPS", response_url: responseUrl }));
    const ack = await h.slack.ackOf(envelopeId);
    return { ack, text: String(ack.payload?.text ?? ""), responseUrl };
  };

  it("connects with the app-level token through SLACK_API_URL and listens on no HTTP port", () => {
    // start() answered no port: there is no Slack endpoint to expose.
    expect(h.url).toBe("");
    expect(h.slack.apiCalls("apps.connections.open")).toHaveLength(1);
    expect(h.slack.apiCalls("auth.test")).toHaveLength(1);
    expect(h.slack.socketConnects).toBe(1);
    expect(h.slack.socketsOpen).toBe(1);
  });

  it("/iaas help is acked over the socket, the help text as the ack's payload", async () => {
    const { ack, text } = await slash("help");
    expect(ack.payload).toMatchObject({ response_type: "ephemeral" });
    expect(text).toMatch(/^\*\/iaas commands you can run\*\n/);
    expect(text).toContain("• `/iaas power on|off|reset|suspend|shutdown|reboot &lt;vm&gt;`");
  });

  it("/iaas power off is acked with 'Powering off' and published once, replies bound to the envelope's response_url", async () => {
    const before = await h.lastCommandSeq();
    const { text, responseUrl } = await slash("power off web-01");
    expect(text).toMatch(/^Powering off `web-01`… \(request `r-[a-z2-7]{24}`\)$/);
    const id = /`(r-[a-z2-7]{24})`/.exec(text)![1];
    // The gateway publishes before it acks.
    const published = await h.commands(before);
    expect(published.map((c) => [c.subject, c.msgId, c.body.vm])).toEqual([["iaas.cmd.power.off", id, "web-01"]]);
    expect(published[0]!.body).toMatchObject({ actor: { userId: "U0ALICE", teamId: "T0TEAM", channelId: "C0OPS", via: "slack" } });

    // The result goes to the response_url the envelope carried, as over HTTP.
    const seq = await h.publishResult({ id: id!, status: "succeeded", command: "power.off", message: "`web-01` is powered off.", at: new Date().toISOString() });
    await h.resultsAckedThrough(seq);
    expect(h.slack.postsTo(responseUrl).map((c) => String(c.body.text))).toEqual([expect.stringContaining("`web-01` is powered off.")]);
  });

  it("a Confirm click for nothing pending arrives as an `interactive` envelope: a bare ack, the answer on its response_url", async () => {
    const responseUrl = h.slack.responseUrl();
    const leaked = await h.publishedBy(async () => {
      const envelopeId = h.slack.sendEnvelope("interactive", {
        type: "block_actions",
        user: { id: "U0ALICE" },
        team: { id: "T0TEAM" },
        response_url: responseUrl,
        actions: [{ type: "button", action_id: "iaas.confirm", value: "r-aaaaaaaaaaaaaaaaaaaaaaaa" }],
      });
      expect((await h.slack.ackOf(envelopeId)).payload).toBeUndefined();
      await h.slack.waitFor(() => h.slack.postsTo(responseUrl).length > 0);
    });
    expect(leaked).toEqual([]);
    expect(h.slack.postsTo(responseUrl).map((c) => c.body.text)).toEqual([":hourglass: This confirmation is no longer valid; nothing was done. Run the command again."]);
  });

  it("reconnects when Slack asks it to (disconnect) and when the connection drops, and takes commands again", async () => {
    const opens = h.slack.apiCalls("apps.connections.open").length;
    h.slack.disconnectSockets();
    // The gateway waits 1 s before it reconnects (its own back-off, see socket-mode-outage.test.ts).
    await waitUntil("a new connection after `disconnect`", () => h.slack.socketConnects === 2 && h.slack.socketsOpen === 1, 30_000);
    expect((await slash("help")).text).toContain("/iaas commands you can run");

    h.slack.dropSockets();
    await waitUntil("a new connection after the drop", () => h.slack.socketConnects === 3 && h.slack.socketsOpen === 1, 30_000);
    // Each connection asked for a fresh URL: the tickets are single-use.
    expect(h.slack.apiCalls("apps.connections.open")).toHaveLength(opens + 2);
    const { text } = await slash("power on web-02");
    expect(text).toMatch(/^Powering on `web-02`… \(request `r-/);
  });
});

describe("gateway Socket Mode: tokens", () => {
  it("an app token Slack refuses stops the start with an error naming SLACK_APP_TOKEN (not the token), and no connection is made", async () => {
    await using nats = await startNatsServer();
    await using slack = await SlackStandIn.start({ appToken: APP_TOKEN });
    const log = createLogger("gateway-test", "silent");
    // No signing secret: Socket Mode does not use one.
    const config = loadConfig(GatewayEnvSchema, { NATS_URL: nats.url, SLACK_API_URL: slack.apiUrl, SLACK_APP_TOKEN: "xapp-fake-2" });
    const nc = await connectNats(config, "gateway-test", log);
    try {
      await ensureGatewayResources(nc, log);
      const gateway = buildGateway({ nc, config, log, metrics: createMetrics("gateway"), policy: testPolicy() });
      const err = await gateway.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      await gateway.stop();
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variables).toEqual(["SLACK_APP_TOKEN"]);
      expect((err as Error).message).toBe("invalid configuration: SLACK_APP_TOKEN: Slack's apps.connections.open refused it (invalid_auth)");
      expect(slack.apiCalls("apps.connections.open")).toHaveLength(1);
      expect(slack.socketConnects).toBe(0);
      // So Slack has nowhere to deliver a command.
      expect(() => slack.sendEnvelope("slash_commands", slashCommandPayload({ text: "help" }))).toThrow(/no Socket Mode connection/);
    } finally {
      await nc.drain();
    }
  });

  it("a token that is not an app-level one (a bot token) is refused by the configuration, without echoing it", () => {
    const err = (() => {
      try {
        loadConfig(GatewayEnvSchema, { SLACK_SIGNING_SECRET: SECRET, SLACK_APP_TOKEN: "xoxb-fake-1" });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variables).toEqual(["SLACK_APP_TOKEN"]);
    expect((err as Error).message).toContain("SLACK_APP_TOKEN: must be an app-level token (xapp-…)");
    expect((err as Error).message).not.toContain("xoxb-fake-1");
  });

  it("SLACK_SIGNING_SECRET is required over HTTP, and may be left out in Socket Mode, which does not use it", () => {
    expect(() => loadConfig(GatewayEnvSchema, {})).toThrow(/SLACK_SIGNING_SECRET: is required \(unless SLACK_APP_TOKEN is set, for Socket Mode\)/);
    expect(() => loadConfig(GatewayEnvSchema, { SLACK_SIGNING_SECRET: "" })).toThrow(/SLACK_SIGNING_SECRET: must not be empty/);
    expect(loadConfig(GatewayEnvSchema, { SLACK_APP_TOKEN: APP_TOKEN }).SLACK_SIGNING_SECRET).toBeUndefined();
  });
});
