import type { NatsConnection } from "@nats-io/transport-node";
import type { JsMsg } from "@nats-io/jetstream";
import { z } from "zod";
import {
  CommandIdSchema,
  CommandMsgIds,
  Consumers,
  Headers,
  IaasError,
  FinalResultSchema,
  IsoTimeSchema,
  Subjects,
  formatIssues,
  noticeSubject,
  parseCommandSubject,
  quote,
  type Actor,
  type Command,
  type CommandAudit,
  type FinalResult,
  type Notice,
  type Result,
  type ResultFacts,
  type VmSummary,
} from "@iaas/contracts";
import { backoffMs, consumeLoop, type ConsumeLoop } from "./consume.js";
import { decodeJson, encodeJson, makeHeaders, readKvJson, type Jet, type KV } from "./jetstream.js";
import { traceIdOf } from "./trace.js";
import { inConsumeSpan, type HopSpan } from "./tracing.js";
import type { Logger } from "./log.js";
import type { Metrics } from "./metrics.js";

export interface CommandContext {
  log: Logger;
  /** An earlier delivery of this command started work and did not finish (a crash or a lost ack). */
  resumed: boolean;
  deliveryCount: number;
  /** Posts a progress message (plain text) and its facts to `iaas.result.<id>` (the gateway relays it to Slack). */
  progress(message: string, facts?: ResultFacts): Promise<void>;
  /** W3C traceparent for calls this command makes (a child span of the one it arrived with). */
  traceparent: string;
}

export interface CommandOutcome {
  /** Plain text for people reading the result; the gateway escapes it for Slack. */
  message: string;
  facts?: ResultFacts;
  vm?: VmSummary;
}

const CommandStateSchema = z.discriminatedUnion("status", [
  z.strictObject({ status: z.literal("started"), at: IsoTimeSchema, delivery: z.number().int() }),
  z.strictObject({ status: z.literal("retrying"), at: IsoTimeSchema, delivery: z.number().int() }),
  z.strictObject({ status: z.literal("done"), at: IsoTimeSchema, result: FinalResultSchema }),
]);
type CommandState = z.infer<typeof CommandStateSchema>;

export interface CommandConsumerOptions<C extends Command> {
  nc: NatsConnection;
  jet: Jet;
  /** The `iaas_command_state` bucket. */
  state: KV;
  consumer: keyof typeof Consumers;
  schema: z.ZodType<C>;
  handle(cmd: C, ctx: CommandContext): Promise<CommandOutcome>;
  /**
   * Guard rails: throws an IaasError to refuse (policy, protected VMs); runs before `handle`. May
   * answer the approval the command runs under (`requireApproval`): its id and approvers go into
   * the result's facts and the audit record.
   */
  authorize?(cmd: C): Promise<Granted | void> | Granted | void;
  log: Logger;
  metrics: Metrics;
  /** Commands handled at once by this instance. */
  concurrency?: number;
  /** Delay before a retryable failure is delivered again; default 1 s doubling to 30 s. */
  backoffMs?: (delivery: number) => number;
}

/** What the guard answers for a command that runs under an approval. */
export interface Granted {
  approvalId: string;
  approvedBy: string[];
}

/** Stops fetching; `stop()` resolves once in-flight commands have finished. */
export type CommandConsumer = ConsumeLoop;

/**
 * The shared loop of every command-handling service. At-least-once delivery made safe:
 * - a command whose final result is recorded is not run again; its result is re-published
 *   (the results stream drops the duplicate by Nats-Msg-Id) and the message acked;
 * - a command that started and did not finish is handed over with `resumed`, so the handler
 *   can check vCenter before acting again;
 * - the message is acked only after the final result is stored in JetStream;
 * - a poisoned message (not JSON, wrong schema) is answered once and terminated, never retried;
 * - a retryable failure is retried with back-off up to `maxDeliver`, then answered, audited and
 *   copied to the dead-letter stream.
 */
export async function startCommandConsumer<C extends Command>(opts: CommandConsumerOptions<C>): Promise<CommandConsumer> {
  const def = Consumers[opts.consumer];
  const consumer = await opts.jet.js.consumers.get(def.stream, def.durable);
  // The consumer as it is configured (an operator may have changed ack wait or max deliveries),
  // not the contract's defaults: keep-alives must beat the real ack wait.
  const info = await consumer.info();
  const settings: ConsumerSettings = {
    durable: def.durable,
    ackWaitMs: (info.config.ack_wait ?? def.ackWaitNs) / 1e6,
    maxDeliver: info.config.max_deliver !== undefined && info.config.max_deliver > 0 ? info.config.max_deliver : Number.POSITIVE_INFINITY,
  };
  opts.metrics.watchConsumer(def.durable, async () => {
    const info = await opts.jet.jsm.consumers.info(def.stream, def.durable);
    return { pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered };
  });
  return consumeLoop(consumer, {
    limit: opts.concurrency ?? 4,
    what: "command",
    log: opts.log,
    handle: (m) =>
      handleOne(m, opts, settings).catch((err: unknown) => {
        // Outside the handler (NATS away while storing the result or state): the message is
        // not acked, so it comes back and is answered from the stored state.
        opts.log.error({ err, subject: m.subject }, "could not finish a command message; it will be delivered again");
        try {
          m.nak(1000);
        } catch {
          // The connection is gone; JetStream redelivers after the ack wait.
        }
      }),
  });
}

/** What every command service is built from, beside its own handler's needs. */
export interface CommandServiceDeps {
  nc: NatsConnection;
  jet: Jet;
  /** The `iaas_command_state` bucket. */
  state: KV;
  log: Logger;
  metrics: Metrics;
  config: { concurrency: number };
}

/**
 * A command-handling service, not started: `start()` begins consuming its durable with the
 * handler `def` names, `stop()` lets the commands in flight finish.
 */
export function commandService<C extends Command>(
  deps: CommandServiceDeps,
  def: Pick<CommandConsumerOptions<C>, "consumer" | "schema" | "authorize" | "handle">,
): RunningCommandService {
  let consumer: CommandConsumer | undefined;
  return {
    async start() {
      consumer = await startCommandConsumer({ ...def, nc: deps.nc, jet: deps.jet, state: deps.state, log: deps.log, metrics: deps.metrics, concurrency: deps.config.concurrency });
    },
    async stop() {
      await consumer?.stop();
    },
  };
}

export interface RunningCommandService {
  start(): Promise<void>;
  stop(): Promise<void>;
}

interface ConsumerSettings {
  durable: string;
  ackWaitMs: number;
  maxDeliver: number;
}

/**
 * One delivery in a consumer span (messaging conventions: `process <subject>`) under the one that
 * published it; the traceparent of the calls it makes and the results it publishes is this span's.
 */
async function handleOne<C extends Command>(m: JsMsg, opts: CommandConsumerOptions<C>, def: ConsumerSettings): Promise<void> {
  await inConsumeSpan(def.durable, def.durable, m, (hop) => handleDelivery(m, opts, def, hop));
}

async function handleDelivery<C extends Command>(m: JsMsg, opts: CommandConsumerOptions<C>, def: ConsumerSettings, hop: HopSpan): Promise<void> {
  const started = performance.now();
  const { js } = opts.jet;
  const delivery = m.info.deliveryCount;
  if (delivery > 1) opts.metrics.redeliveries.inc({ consumer: def.durable });

  let raw: unknown;
  let cmd: C;
  try {
    raw = decodeJson(m.data);
    const parsed = opts.schema.safeParse(raw);
    if (!parsed.success) throw new IaasError("IAAS_BAD_REQUEST", `invalid command: ${formatIssues(parsed.error)}`);
    cmd = parsed.data;
    const subj = parseCommandSubject(m.subject);
    const action = "action" in cmd ? cmd.action : undefined;
    if (!subj || subj.area !== cmd.area || subj.action !== action) {
      throw new IaasError("IAAS_BAD_REQUEST", `the command body (${cmd.area}.${String(action)}) does not match its subject ${m.subject}`);
    }
  } catch (err) {
    // Poison: answer once if we can tell whom, then never deliver it again.
    const ie = IaasError.from(err, "IAAS_BAD_REQUEST");
    const id = (raw as { id?: unknown } | undefined)?.id;
    opts.log.warn({ subject: m.subject, code: ie.code, err: ie }, `rejected a command message: ${ie.message}`);
    opts.metrics.commands.inc({ verb: m.subject.split(".").slice(2).join("."), outcome: "failed", code: ie.code });
    if (typeof id === "string" && CommandIdSchema.safeParse(id).success) {
      await publishFinal(js, { id, status: "failed", command: m.subject.split(".").slice(2).join("."), error: ie.toJSON(), at: new Date().toISOString() }).catch(() => undefined);
    }
    // No reason text: nats-server 2.9 ignores "+TERM <reason>" and would redeliver forever.
    m.term();
    return;
  }

  const verb = `${cmd.area}.${"action" in cmd ? cmd.action : "?"}`;
  const traceparent = hop.traceparent;
  const log = opts.log.child({ requestId: cmd.id, verb, delivery, traceId: traceIdOf(traceparent) });
  const publishOpts = (msgID: string) => ({ msgID, headers: makeHeaders({ [Headers.traceparent]: traceparent, [Headers.requestId]: cmd.id }) });
  // The common case, a command seen for the first time, takes one round trip: creating its state
  // succeeds only where there is none. Any state already there (an earlier delivery, even one
  // nats-server 2.9 handed on with delivery count 1) is read and decides, as below.
  const startedState = () => JSON.stringify({ status: "started", at: new Date().toISOString(), delivery } satisfies CommandState);
  const fresh = await opts.state.create(cmd.id, startedState()).then(
    () => true,
    () => false,
  );
  const prior = fresh ? undefined : await readState(opts.state, cmd.id, log);
  if (prior?.status === "done") {
    log.info("command already finished; re-publishing its result");
    await publishFinal(js, prior.result, traceparent);
    opts.metrics.commands.inc({ verb, outcome: "duplicate", code: "" });
    m.ack();
    return;
  }
  // A holder that is alive keeps the message with working(), so JetStream redelivers only an ack
  // wait after its last sign of life. A delivery sooner than an ack wait after another one started
  // means that one may still be running (nats-server 2.9 hands a killed client's pull on early):
  // wait out its lease rather than race its vCenter task. Never on the last delivery.
  if (prior?.status === "started" && delivery < def.maxDeliver) {
    const age = Date.now() - Date.parse(prior.at);
    if (age < def.ackWaitMs) {
      log.warn({ ageMs: age }, "an earlier delivery of this command may still be running; waiting for its lease");
      m.nak(Math.max(1000, def.ackWaitMs - age));
      return;
    }
  }
  if (!fresh) await opts.state.put(cmd.id, startedState());

  // Long vCenter tasks: tell JetStream we are alive so the message is not redelivered meanwhile.
  const keepAlive = setInterval(() => m.working(), Math.max(1000, def.ackWaitMs / 3));
  let progressN = 0;
  const ctx: CommandContext = {
    log,
    resumed: prior?.status === "started" || prior?.status === "retrying" || delivery > 1,
    deliveryCount: delivery,
    traceparent,
    progress: async (message, facts) => {
      progressN += 1;
      const r: Result = { id: cmd.id, status: "progress", command: verb, message, ...(facts ? { facts } : {}), at: new Date().toISOString() };
      await js.publish(Subjects.result(cmd.id), encodeJson(r), publishOpts(CommandMsgIds.progress(cmd.id, delivery, progressN)));
    },
  };

  let result: FinalResult;
  let granted: Granted | void = undefined;
  try {
    granted = await opts.authorize?.(cmd);
    const out = await opts.handle(cmd, ctx);
    const facts = granted ? { code: "done" as const, ...out.facts, approvalId: granted.approvalId, approvedBy: granted.approvedBy } : out.facts;
    result = { id: cmd.id, status: "succeeded", command: verb, message: out.message, ...(facts ? { facts } : {}), ...(out.vm ? { vm: out.vm } : {}), at: new Date().toISOString() };
  } catch (err) {
    const ie = IaasError.from(err);
    if (ie.retryable && delivery < def.maxDeliver) {
      clearInterval(keepAlive);
      log.warn({ err: ie, code: ie.code }, `retryable failure; will retry (delivery ${delivery} of ${def.maxDeliver})`);
      opts.metrics.commands.inc({ verb, outcome: "retried", code: ie.code });
      // Our own retry, not a crash: the next delivery need not wait for a lease.
      await opts.state.put(cmd.id, JSON.stringify({ status: "retrying", at: new Date().toISOString(), delivery } satisfies CommandState));
      m.nak((opts.backoffMs ?? backoffMs)(delivery));
      return;
    }
    if (ie.code === "IAAS_INTERNAL") log.error({ err }, "command failed with an unexpected error");
    else log.info({ code: ie.code }, `command failed: ${ie.message}`);
    result = { id: cmd.id, status: "failed", command: verb, error: ie.toJSON(), at: new Date().toISOString() };
    hop.fail(ie);
    if (ie.retryable) {
      // Out of deliveries: keep the command for an operator (docs/operations.md, dead letters).
      const [area, action] = verb.split(".") as ["power", string];
      opts.metrics.deadLetters.inc({ verb });
      await js.publish(Subjects.deadLetter(area, action), encodeJson({ command: cmd, error: ie.toJSON(), deliveries: delivery, at: result.at }), publishOpts(CommandMsgIds.deadLetter(cmd.id))).catch((e: unknown) => log.error({ err: e }, "dead-letter publish failed"));
      // And a word to the Slack notify channel (IAAS_NOTICES: posted once, when a gateway can).
      const vm = vmNamed(cmd);
      const notice: Notice = {
        id: `dlq-${cmd.id}`,
        kind: "command.dead-letter",
        severity: "error",
        text: `Gave up on \`${verb}\`${vm ? ` for ${quote(vm)}` : ""} (request \`${cmd.id}\`) after ${delivery} tries: ${ie.message}`.slice(0, 3000),
        ...(vm ? { vm: vm.slice(0, 255) } : {}),
        cause: cmd.id,
        at: result.at,
      };
      await js.publish(noticeSubject(notice.kind), encodeJson(notice), publishOpts(notice.id)).catch((e: unknown) => log.error({ err: e }, "dead-letter notice publish failed"));
    }
  } finally {
    clearInterval(keepAlive);
  }

  // State first, then the result: if publishing fails, the message comes back and the stored
  // result is published then (deduplicated by Nats-Msg-Id), instead of running the command again.
  await opts.state.put(cmd.id, JSON.stringify({ status: "done", at: result.at, result } satisfies CommandState));
  await publishFinal(js, result, traceparent);
  await publishAudit(js, cmd.actor, cmd.id, verb, vmNamed(cmd), result, granted || undefined, (cmd as { vcenter?: string }).vcenter).catch((err: unknown) => log.error({ err }, "audit publish failed"));
  m.ack();
  opts.metrics.commands.inc({ verb, outcome: result.status, code: result.status === "failed" ? result.error.code : "" });
  opts.metrics.commandSeconds.observe({ verb }, (performance.now() - started) / 1000);
  log.info({ outcome: result.status, ms: Math.round(performance.now() - started) }, `command ${result.status}`);
}

/** The VM a command is about: the one it acts on, or the one it makes. */
function vmNamed(cmd: Command): string | undefined {
  if ("vm" in cmd) return cmd.vm;
  if ("name" in cmd && typeof cmd.name === "string") return cmd.name;
  return undefined;
}

async function readState(kv: KV, id: string, log: Logger): Promise<CommandState | undefined> {
  return (await readKvJson(kv, id, CommandStateSchema, log, "command state"))?.value;
}

export async function publishFinal(js: Jet["js"], result: FinalResult, traceparent?: string): Promise<void> {
  const headers = makeHeaders({ [Headers.requestId]: result.id, [Headers.traceparent]: traceparent });
  await js.publish(Subjects.result(result.id), encodeJson(result), { msgID: CommandMsgIds.final(result.id), headers });
}

export async function publishAudit(
  js: Jet["js"],
  actor: Actor,
  id: string,
  command: string,
  vm: string | undefined,
  result: FinalResult | { status: "rejected"; code: string; message: string; at: string },
  granted?: Granted,
  vcenter?: string,
): Promise<void> {
  const rec: CommandAudit = {
    kind: "command",
    id,
    actor,
    command,
    ...(vm ? { vm } : {}),
    ...(vcenter !== undefined ? { vcenter } : {}),
    outcome: result.status === "rejected" ? "rejected" : result.status,
    ...(result.status === "failed" ? { code: result.error.code } : result.status === "rejected" ? { code: result.code as CommandAudit["code"] } : {}),
    message: result.status === "failed" ? result.error.message : result.message,
    at: result.at,
    ...(granted ? { approvalId: granted.approvalId, approvedBy: granted.approvedBy } : {}),
  };
  await js.publish(Subjects.audit("command"), encodeJson(rec), { msgID: CommandMsgIds.audit(id, rec.outcome) });
}
