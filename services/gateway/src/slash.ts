import { z } from "zod";
import {
  IaasError,
  PowerCommandSchema,
  SlackChannelIdSchema,
  SlackTeamIdSchema,
  SlackUserIdSchema,
  Subjects,
  formatIssues,
  type Actor,
  type CommandArea,
  type Command,
} from "@iaas/contracts";
import { encodeJson, type JetStreamClient, type Logger } from "@iaas/runtime";
import { commandIdFor } from "./ids.js";
import type { GatewayMetrics } from "./metrics.js";
import { parseCommand, type ParsedCommand, type Verb } from "./parse.js";
import { acceptedText, ephemeral, errorText, helpText, parseErrorText } from "./render.js";
import type { Replier, SlackMessage } from "./reply.js";
import type { RequestStore } from "./requests.js";

/**
 * The fields of Slack's slash command payload the gateway uses. Not strict: Slack adds fields
 * over time. It reaches us only after Bolt verified the signature (HTTP) or over the
 * authenticated Socket Mode connection, so identity comes from here and nowhere else.
 * https://api.slack.com/interactivity/slash-commands#app_command_handling
 */
export const SlashPayloadSchema = z.object({
  team_id: SlackTeamIdSchema,
  user_id: SlackUserIdSchema,
  channel_id: SlackChannelIdSchema,
  command: z.string().min(1),
  text: z.string().max(4000),
  response_url: z.string().min(1),
  trigger_id: z.string().min(1).max(255),
});
export type SlashPayload = z.infer<typeof SlashPayloadSchema>;

/** How long the ack waits for the command to be stored and published (Slack gives us 3 s in all). */
export const ACK_BUDGET_MS = 2_000;
/**
 * Storing the reply target fails fast, so that with NATS away the ack itself can say so; a
 * publish gets longer, and if it outlasts the ack budget its failure is posted afterwards.
 */
const STORE_TIMEOUT_MS = 1_000;
const PUBLISH_TIMEOUT_MS = 5_000;

export interface SlashDeps {
  js: JetStreamClient;
  requests: RequestStore;
  replier: Replier;
  allowed: (url: string) => boolean;
  log: Logger;
  metrics: GatewayMetrics;
}

export interface Ack {
  message: SlackMessage;
  verb: string;
  outcome: "accepted" | "duplicate" | "rejected" | "unavailable" | "answered";
  code?: string;
}

type Handler<C extends ParsedCommand> = (cmd: C, p: SlashPayload, meta: { retryNum?: number | undefined }) => Promise<Ack>;

/**
 * The `/iaas` listener, independent of the transport: Bolt's HTTP receiver and Socket Mode
 * both hand it the verified payload and an `ack`. It acks exactly once, within Slack's 3 s.
 */
export class SlashCommands {
  /** Submissions still running after their ack (a slow NATS); awaited on stop. */
  private readonly pending = new Set<Promise<unknown>>();
  private readonly handlers: { [V in Verb]: Handler<Extract<ParsedCommand, { verb: V }>> };

  constructor(private readonly d: SlashDeps) {
    this.handlers = {
      help: async (cmd) => ({ message: ephemeral(helpText(cmd.topic)), verb: "help", outcome: "answered" }),
      power: async (cmd, p, meta) => {
        const id = commandIdFor(p.team_id, p.trigger_id);
        const command = PowerCommandSchema.parse({ id, area: "power", action: cmd.action, vm: cmd.vm, actor: actorOf(p), issuedAt: new Date().toISOString() });
        return this.submit("power", cmd.action, command, p, acceptedText(cmd, id), meta);
      },
    };
  }

  async handle(body: unknown, ack: (m: SlackMessage) => Promise<void>, meta: { retryNum?: number | undefined } = {}): Promise<void> {
    const started = performance.now();
    let result: Ack;
    try {
      result = await this.route(body, meta);
    } catch (err) {
      const ie = IaasError.from(err);
      this.d.log.error({ err }, "slash command failed");
      result = { message: ephemeral(errorText(ie)), verb: "unknown", outcome: "rejected", code: ie.code };
    }
    await ack(result.message);
    this.d.metrics.ackSeconds.observe({ verb: result.verb }, (performance.now() - started) / 1000);
    this.d.metrics.commands.inc({ verb: result.verb, outcome: result.outcome, code: result.code ?? "" });
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  private async route(body: unknown, meta: { retryNum?: number | undefined }): Promise<Ack> {
    const parsed = SlashPayloadSchema.safeParse(body);
    if (!parsed.success) {
      const msg = `slash command payload rejected: ${formatIssues(parsed.error)}`;
      this.d.log.warn(msg);
      return { message: ephemeral(errorText(new IaasError("IAAS_BAD_REQUEST", "This request from Slack is not one the IaaS app understands."))), verb: "unknown", outcome: "rejected", code: "IAAS_BAD_REQUEST" };
    }
    const p = parsed.data;
    const cmd = parseCommand(p.text);
    if (!cmd.success) {
      // Never a word the user typed as a label: metric label values must stay a small set.
      const verb = cmd.error.verb ?? "unknown";
      this.d.log.info({ userId: p.user_id, code: cmd.error.code }, `command rejected: ${cmd.error.message}`);
      return { message: ephemeral(parseErrorText(cmd.error)), verb, outcome: "rejected", code: cmd.error.code };
    }
    const handler = this.handlers[cmd.data.verb] as Handler<ParsedCommand>;
    return handler(cmd.data, p, meta);
  }

  /**
   * Stores where to answer, then publishes the command with `Nats-Msg-Id` = id. The ack waits
   * up to ACK_BUDGET_MS for both: then it can say truthfully that the command is queued, or
   * that it is not. If NATS is slower than that, the ack says the command is on its way and a
   * later failure is posted to the response_url.
   */
  private async submit(area: CommandArea, action: string, command: Command, p: SlashPayload, acceptedLine: string, meta: { retryNum?: number | undefined }): Promise<Ack> {
    const verb = `${area}.${action}`;
    const id = command.id;
    const log = this.d.log.child({ requestId: id, verb, userId: p.user_id, ...(meta.retryNum ? { retryNum: meta.retryNum } : {}) });
    if (!this.d.allowed(p.response_url)) {
      // Slack's response URLs are always on Slack's host; anything else is a misconfiguration
      // (SLACK_API_URL) or a crafted request. Refuse before anything is published.
      log.warn("command refused: its response_url is not on Slack's host");
      return { message: ephemeral(errorText(new IaasError("IAAS_BAD_REQUEST", "This request cannot be answered: its response URL is not Slack's."))), verb, outcome: "rejected", code: "IAAS_BAD_REQUEST" };
    }

    const work = (async () => {
      const created = await this.d.requests.create({
        id,
        responseUrl: p.response_url,
        teamId: p.team_id,
        channelId: p.channel_id,
        userId: p.user_id,
        text: p.text,
        createdAt: new Date().toISOString(),
        posts: 0,
        finalDelivered: false,
      }, STORE_TIMEOUT_MS);
      const pa = await this.d.js.publish(Subjects.command(area, action), encodeJson(command), { msgID: id, timeout: PUBLISH_TIMEOUT_MS });
      return { duplicate: pa.duplicate || !created };
    })();

    let timer: NodeJS.Timeout | undefined;
    const first = await Promise.race([
      work.then(
        (v) => ({ kind: "done" as const, duplicate: v.duplicate }),
        (err: unknown) => ({ kind: "failed" as const, err }),
      ),
      new Promise<{ kind: "late" }>((resolve) => {
        timer = setTimeout(() => resolve({ kind: "late" }), ACK_BUDGET_MS);
      }),
    ]);
    clearTimeout(timer);

    switch (first.kind) {
      case "done":
        log.info({ duplicate: first.duplicate }, first.duplicate ? "command repeated; JetStream dropped the copy" : "command published");
        return { message: ephemeral(acceptedLine), verb, outcome: first.duplicate ? "duplicate" : "accepted" };
      case "failed": {
        log.error({ err: first.err }, "could not publish the command");
        return { message: ephemeral(errorText(unavailable(), id)), verb, outcome: "unavailable", code: "IAAS_UNAVAILABLE" };
      }
      case "late": {
        log.warn({ budgetMs: ACK_BUDGET_MS }, "publishing is slow; acked before JetStream confirmed");
        const later = work.then(
          () => log.info("command published after the ack"),
          async (err: unknown) => {
            log.error({ err }, "could not publish the command");
            this.d.metrics.commands.inc({ verb, outcome: "unavailable", code: "IAAS_UNAVAILABLE" });
            await this.d.replier.direct(p.response_url, ephemeral(errorText(unavailable(), id)), id);
          },
        );
        this.pending.add(later);
        void later.finally(() => this.pending.delete(later));
        return { message: ephemeral(acceptedLine), verb, outcome: "accepted" };
      }
    }
  }
}

function unavailable(): IaasError {
  return new IaasError("IAAS_UNAVAILABLE", "The IaaS service cannot take commands right now; nothing was done. Try again in a minute.");
}

function actorOf(p: SlashPayload): Actor {
  return { userId: p.user_id, teamId: p.team_id, channelId: p.channel_id, via: "slack" };
}
