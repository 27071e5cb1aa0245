import { randomUUID } from "node:crypto";
import { Consumers, Streams, Subjects, type Result } from "@iaas/contracts";
import { connectNats, createLogger, createMetrics, encodeJson, jetstreamFor, loadConfig, type Jet, type Metrics, type NatsConnection } from "@iaas/runtime";
import { SlackStandIn, postSigned, slashCommandBody, slashCommandPayload, startNatsServer, waitUntil, type NatsServer, type PostResult, type SlackStandInOptions, type SlashCommandFields } from "@iaas/testkit";
import { DEFAULT_POLICY, policyFromObject, type Policy } from "@iaas/policy";
import { buildGateway, ensureGatewayResources, GatewayEnvSchema, type Gateway, type SocketReconnect } from "../src/mod.js";

export const SECRET = "test-signing-secret";

export interface StoredCommand {
  seq: number;
  subject: string;
  msgId: string | undefined;
  body: Record<string, unknown>;
}

export interface Harness {
  nats: NatsServer;
  slack: SlackStandIn;
  nc: NatsConnection;
  jet: Jet;
  metrics: Metrics;
  gateway: Gateway;
  /** `http://127.0.0.1:<port>/slack/events`; empty in Socket Mode (no HTTP port). */
  url: string;
  /**
   * A signed `/iaas <text>` with a fresh trigger_id and a response_url on the stand-in, unless given.
   * In Socket Mode the same command as a `slash_commands` envelope: status 200 and the ack's payload
   * as `json` once the gateway acks it over the socket (`headers` do not apply).
   */
  slash(text: string, fields?: Partial<SlashCommandFields>, headers?: Record<string, string>): Promise<PostResult & { responseUrl: string; triggerId: string }>;
  /** Every message in IAAS_COMMANDS after sequence `afterSeq`. */
  commands(afterSeq?: number): Promise<StoredCommand[]>;
  lastCommandSeq(): Promise<number>;
  /**
   * Asserts through a barrier that `fn` published no command: after it, a sentinel command is
   * sent and must be the only new message. The gateway publishes before it acks, so anything
   * `fn` caused would be in the stream ahead of the sentinel.
   */
  publishedBy(fn: () => Promise<unknown>): Promise<StoredCommand[]>;
  /** Publishes a result; resolves with its stream sequence. */
  publishResult(r: Result): Promise<number>;
  /** Waits until the gateway's result consumer has acked everything up to `seq`. */
  resultsAckedThrough(seq: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * The default policy with room for the many commands one test user sends in a burst; tests of
 * the rate limit pass their own.
 */
export function testPolicy(overrides: Record<string, unknown> = {}, admins = ""): Policy {
  return policyFromObject({ ...DEFAULT_POLICY, rateLimit: { perUserPerMinute: 1000 }, ...overrides }, { source: "gateway test policy", env: { IAAS_ADMINS: admins } });
}

export interface HarnessOptions {
  policy?: Policy;
  now?: () => number;
  /** Sets up the Slack stand-in before the gateway starts (user groups, failures). */
  slack?: (slack: SlackStandIn) => void;
  /** How the Slack stand-in starts (`appToken` turns on its Socket Mode side). */
  slackOptions?: SlackStandInOptions;
  /** Socket Mode: the gateway's reconnect back-off (default 1 s doubling up to 60 s). */
  slackReconnect?: SocketReconnect;
}

export async function startHarness(env: Record<string, string> = {}, opts: HarnessOptions = {}): Promise<Harness> {
  const nats = await startNatsServer();
  const slack = await SlackStandIn.start(opts.slackOptions);
  opts.slack?.(slack);
  const log = createLogger("gateway-test", process.env.TEST_LOG_LEVEL ?? "silent");
  const config = loadConfig(GatewayEnvSchema, {
    NATS_URL: nats.url,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slack.apiUrl,
    GATEWAY_HOST: "127.0.0.1",
    GATEWAY_PORT: "0",
    LOG_LEVEL: "silent",
    ...env,
  });
  const nc = await connectNats(config, "gateway-test", log);
  await ensureGatewayResources(nc, log);
  const jet = await jetstreamFor(nc);
  const metrics = createMetrics("gateway");
  const gateway = buildGateway({ nc, config, log, metrics, policy: opts.policy ?? testPolicy({}, config.IAAS_ADMINS.join(",")), ...(opts.now ? { now: opts.now } : {}), ...(opts.slackReconnect ? { slackReconnect: opts.slackReconnect } : {}) });
  const { port } = await gateway.start();
  const url = port === undefined ? "" : `http://127.0.0.1:${port}/slack/events`;

  const commands = async (afterSeq = 0): Promise<StoredCommand[]> => {
    const info = await jet.jsm.streams.info(Streams.commands.name);
    const out: StoredCommand[] = [];
    for (let seq = Math.max(afterSeq + 1, info.state.first_seq); seq <= info.state.last_seq; seq++) {
      const m = await jet.jsm.streams.getMessage(Streams.commands.name, { seq });
      if (!m) continue;
      out.push({ seq, subject: m.subject, msgId: m.header?.get("Nats-Msg-Id") || undefined, body: m.json<Record<string, unknown>>() });
    }
    return out;
  };
  const lastCommandSeq = async () => (await jet.jsm.streams.info(Streams.commands.name)).state.last_seq;

  const h: Harness = {
    nats,
    slack,
    nc,
    jet,
    metrics,
    gateway,
    url,
    slash: async (text, fields = {}, headers = {}) => {
      const responseUrl = fields.response_url ?? slack.responseUrl();
      const triggerId = fields.trigger_id ?? `${Date.now()}.42.${randomUUID()}`;
      const payload = { text, user_id: "U0ALICE", team_id: "T0TEAM", channel_id: "C0OPS", ...fields, response_url: responseUrl, trigger_id: triggerId };
      if (url === "") {
        const started = performance.now();
        const ack = await slack.ackOf(slack.sendEnvelope("slash_commands", slashCommandPayload(payload)));
        const json = ack.payload ?? {};
        return { status: 200, body: JSON.stringify(json), json, ms: performance.now() - started, responseUrl, triggerId };
      }
      const r = await postSigned(url, slashCommandBody(payload), { secret: SECRET, headers });
      return { ...r, responseUrl, triggerId };
    },
    commands,
    lastCommandSeq,
    publishedBy: async (fn) => {
      const before = await lastCommandSeq();
      await fn();
      const sentinel = `sentinel-${randomUUID().slice(0, 8)}`;
      const r = await h.slash(`power on ${sentinel}`);
      if (r.status !== 200) throw new Error(`sentinel command failed: ${r.status} ${r.body}`);
      const after = await waitUntil("the sentinel command", async () => {
        const cmds = await commands(before);
        return cmds.some((c) => c.body.vm === sentinel) ? cmds : undefined;
      });
      return after.filter((c) => c.body.vm !== sentinel);
    },
    publishResult: async (r) => {
      const pa = await jet.js.publish(Subjects.result(r.id), encodeJson(r), { msgID: `${r.id}:${r.status}:${randomUUID()}` });
      return pa.seq;
    },
    resultsAckedThrough: async (seq) => {
      const def = Consumers.gatewayResults;
      await waitUntil(`results acked through ${seq}`, async () => {
        const ci = await jet.jsm.consumers.info(def.stream, def.durable);
        return ci.ack_floor.stream_seq >= seq && ci.num_ack_pending === 0;
      });
    },
    close: async () => {
      await gateway.stop();
      await nc.drain().catch(() => undefined);
      await slack.close();
      await nats.dispose();
    },
  };
  return h;
}
