import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { slashCommandPayload, waitUntil } from "@iaas/testkit";
import { reconnectDelay, SOCKET_RECONNECT } from "../src/mod.js";
import { startHarness, type Harness } from "./harness.js";

/** An obviously fake app-level token: real ones are far longer. */
const APP_TOKEN = "xapp-fake-1";

/**
 * Slack unreachable exactly when the gateway reconnects. The Socket Mode client of
 * @slack/socket-mode 3.1.0 reconnects from a timer that does `start().then(…)` with no catch, and
 * `start()` rethrows what `apps.connections.open` answers with an HTTP error (a 503) or a network
 * failure: left alone that is an unhandled rejection, which ends a Node 20 process, and the client
 * never tries again. The gateway runs in-process here, so such a rejection would be recorded below
 * (and reported by vitest as an error).
 */
describe("gateway over Socket Mode: Slack unreachable during a reconnect", () => {
  let h: Harness;
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  beforeAll(async () => {
    h = await startHarness({ SLACK_APP_TOKEN: APP_TOKEN }, { slackOptions: { appToken: APP_TOKEN }, slackReconnect: { minMs: 100, maxMs: 400 } });
  });
  afterAll(async () => {
    await h?.close();
  });
  beforeEach(() => {
    rejections.length = 0;
    process.on("unhandledRejection", onRejection);
  });
  afterEach(() => {
    process.off("unhandledRejection", onRejection);
  });

  const help = async () => {
    const envelopeId = h.slack.sendEnvelope("slash_commands", slashCommandPayload({ text: "help", response_url: h.slack.responseUrl() }));
    return String((await h.slack.ackOf(envelopeId)).payload?.text ?? "");
  };
  const opens = () => h.slack.apiCalls("apps.connections.open").length;

  for (const failure of ["http_503", "drop"] as const) {
    it(`apps.connections.open failing (${failure}) after a disconnect: the gateway keeps running and retrying, is not ready, and reconnects once Slack answers`, async () => {
      expect(await help()).toContain("/iaas commands you can run");
      expect(h.gateway.slackReady()).toBe(true);
      const connects = h.slack.socketConnects;
      const before = opens();

      h.slack.connectionsOpenFailure = failure;
      h.slack.disconnectSockets();
      await waitUntil("the connection closed", () => h.slack.socketsOpen === 0);
      // The stand-in sees the close before the gateway's client has read it (a loaded machine: a while).
      await waitUntil("the gateway no longer ready", () => !h.gateway.slackReady());
      // Each attempt is up to three calls (the WebClient's two retries); more than one attempt
      // means the gateway went on trying after a failed one.
      await waitUntil("a second failed attempt, or an unhandled rejection", () => rejections.length > 0 || opens() >= before + 4, 20_000);
      expect(rejections).toEqual([]);
      expect(opens()).toBeGreaterThanOrEqual(before + 4);
      expect(h.slack.socketConnects).toBe(connects);
      expect(h.gateway.slackReady()).toBe(false);

      h.slack.connectionsOpenFailure = undefined;
      await waitUntil("a new connection", () => h.slack.socketConnects === connects + 1 && h.slack.socketsOpen === 1, 20_000);
      await waitUntil("ready again", () => h.gateway.slackReady());
      expect(await help()).toContain("/iaas commands you can run");
      expect(rejections).toEqual([]);
      // One connection: nothing else (the library's own reconnect) opened a second one.
      expect(h.slack.socketConnects).toBe(connects + 1);
    });
  }
});

describe("Socket Mode reconnect back-off", () => {
  it("waits 1 s before the first attempt after a close, doubles after each failed one, and never more than 60 s", () => {
    expect(Array.from({ length: 9 }, (_, i) => reconnectDelay(i + 1, SOCKET_RECONNECT))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    expect(reconnectDelay(10_000, SOCKET_RECONNECT)).toBe(60_000);
    expect(reconnectDelay(3, { minMs: 100, maxMs: 400 })).toBe(400);
  });
});

describe("gateway over Socket Mode: stopped while Slack is unreachable", () => {
  it("stop returns while it is retrying, and no attempt follows it", async () => {
    const h = await startHarness({ SLACK_APP_TOKEN: APP_TOKEN }, { slackOptions: { appToken: APP_TOKEN }, slackReconnect: { minMs: 100, maxMs: 200 } });
    const opens = () => h.slack.apiCalls("apps.connections.open").length;
    try {
      const before = opens();
      h.slack.connectionsOpenFailure = "http_503";
      h.slack.disconnectSockets();
      // Two failed attempts (up to three calls each): the retry loop is running.
      await waitUntil("the gateway retrying", () => opens() >= before + 4, 20_000);
      await h.gateway.stop();
      // An attempt under way at the stop may finish its own HTTP retries; then the calls must stop
      // for good. While retrying, the gateway calls at least every 200 ms (plus the attempt).
      let last = opens();
      let quietSince = Date.now();
      await waitUntil(
        "no more calls for 1.5 s",
        () => {
          if (opens() !== last) {
            last = opens();
            quietSince = Date.now();
          }
          return Date.now() - quietSince >= 1_500;
        },
        15_000,
      );
      expect(h.slack.socketsOpen).toBe(0);
      expect(h.gateway.slackReady()).toBe(false);
    } finally {
      await h.close();
    }
  });
});
