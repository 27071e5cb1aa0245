import { loadPolicy, type Policy } from "@iaas/policy";
import { jetstreamFor, openBucket, type Logger, type Metrics, type NatsConnection } from "@iaas/runtime";
import { Auditor } from "./stores/audit.js";
import { PauseStore } from "./stores/pause.js";
import type { GatewayConfig } from "./config.js";
import { CANCEL_ACTION, CONFIRM_ACTION, ConfirmationStore, handleClick, type ClickDeps } from "./listeners/confirm.js";
import { Interactions, RUN_ACTION, handleRunClick } from "./listeners/interactions.js";
import { gatewayMetrics } from "./metrics.js";
import { startNoticeRelay, type NoticeRelay } from "./relays/notify.js";
import { QuotaGate } from "./stores/quotas.js";
import { RateLimiter } from "./stores/ratelimit.js";
import { Replier, responseUrlGuard } from "./transport/reply.js";
import { RequestStore } from "./stores/requests.js";
import { startResultRelay, type ResultRelay } from "./relays/results.js";
import { createSlackTransport, type SocketReconnect } from "./transport/slack.js";
import { SlashCommands } from "./listeners/slash.js";
import { FORM_CALLBACKS, Forms, MetadataSigner, TEMPLATE_OPTIONS_ACTION } from "./forms/forms.js";
import { HOME_PAGE_ACTION, Home, type HomeApproval } from "./forms/home.js";
import type { Actor } from "@iaas/contracts";
import { button } from "./presentation/blocks.js";
import { SlashPayloadSchema } from "./listeners/call.js";
import { UserGroups } from "./stores/usergroups.js";
import { ApprovalStore } from "./stores/approvals.js";
import { APPROVE_ACTION, ApprovalDesk, REJECT_ACTION, REJECT_VIEW } from "./listeners/approvals.js";
import { checkApproverGroups } from "./config.js";

export interface GatewayDeps {
  nc: NatsConnection;
  config: GatewayConfig;
  log: Logger;
  metrics: Metrics;
  /**
   * The policy the gateway enforces before it publishes; the command services enforce the same
   * again. Default: IAAS_POLICY (or the built-in default) with IAAS_ADMINS, from `config`.
   */
  policy?: Policy;
  /** The clock for confirmation expiry, rate-limit windows and command times (tests move it). */
  now?: () => number;
  /** Approvals waiting for a user, for their App Home (the approvals feature); none when not given. */
  approvalsFor?: (actor: Actor) => Promise<HomeApproval[]>;
  /** Socket Mode: the wait between reconnect attempts (default SOCKET_RECONNECT: 1 s doubling up to 60 s; tests shorten it). */
  slackReconnect?: SocketReconnect;
}

export interface Gateway {
  /** Opens the buckets, starts relaying results and notices, and starts taking Slack requests. */
  start(): Promise<{ port: number | undefined }>;
  /** Stops taking requests, lets submissions and result posts in flight finish. Leaves `nc` open. */
  stop(): Promise<void>;
  /** For /readyz: over Socket Mode, whether the connection to Slack is up; over HTTP always true (Slack comes to us). */
  slackReady(): boolean;
}

/**
 * The gateway, wired but not started. Needs the streams, the `gateway-results` and `gateway-notices` consumers and the
 * gateway's buckets to exist (`ensureGatewayResources`).
 */
export function buildGateway({ nc, config, log, metrics, policy: given, now = Date.now, slackReconnect, approvalsFor }: GatewayDeps): Gateway {
  const gm = gatewayMetrics(metrics);
  const allowed = responseUrlGuard(config.SLACK_API_URL);
  const policy = given ?? loadPolicy({ env: { IAAS_POLICY: config.IAAS_POLICY, IAAS_ADMINS: config.IAAS_ADMINS.join(",") } });
  let slash: SlashCommands | undefined;
  let click: ClickDeps | undefined;
  let relay: ResultRelay | undefined;
  let notices: NoticeRelay | undefined;
  let auditor: Auditor | undefined;
  let approvals: ApprovalDesk | undefined;
  checkApproverGroups(policy, config);
  // Every vCenter id `vc=` may name: `default` first, then VCENTERS.
  const vcenters = config.VCENTERS;
  let forms: Forms | undefined;
  let home: Home | undefined;

  // Every click, modal, options request and event goes to the feature that registered its id (start()).
  const interactions = new Interactions(log);
  const transport = createSlackTransport(
    config,
    log,
    async (body, ack, meta) => {
      if (!slash) throw new Error("gateway not started");
      // `/iaas create` or `/iaas deploy` alone opens a form (with a bot token to call views.open).
      const p = forms ? SlashPayloadSchema.safeParse(body) : undefined;
      const kind = p?.success ? Forms.kindOf(p.data.text) : undefined;
      if (forms && p?.success && kind) {
        const answer = await forms.open(kind, p.data);
        await ack(answer);
        return;
      }
      await slash.handle(body, ack, meta);
    },
    (body) => interactions.action(body),
    {
      ...(slackReconnect ? { reconnect: slackReconnect } : {}),
      listeners: { onView: (b, ack) => interactions.view(b, ack), onOptions: (b, ack) => interactions.suggest(b, ack), onEvent: (b) => interactions.event(b) },
    },
  );

  const groups = new UserGroups({
    list: transport.listUserGroups,
    policy,
    log,
    metrics: gm,
    refreshMs: config.SLACK_USERGROUPS_REFRESH_S * 1000,
  });

  return {
    start: async () => {
      const { js, jsm } = await jetstreamFor(nc);
      const requests = new RequestStore(await openBucket(nc, "requests"), log);
      const confirmations = new ConfirmationStore(await openBucket(nc, "confirmations"), log);
      const rate = new RateLimiter(await openBucket(nc, "rateLimits"), () => policy.rateLimitPerUserPerMinute, now, log, 500);
      // Wall-clock time, not `now`: reservations are shared with vm-lifecycle, which reads them by its own clock.
      const quotas = new QuotaGate({ kv: await openBucket(nc, "quotas"), nc, policy, log, vcenters });
      auditor = new Auditor({ js, jsm, log, now });
      const pause = new PauseStore(await openBucket(nc, "remediationControl"));
      const replier = new Replier({
        requests,
        allowed,
        log,
        ...(transport.postMessage ? { postMessage: transport.postMessage } : {}),
        ...(transport.postEphemeral ? { postEphemeral: transport.postEphemeral } : {}),
      });
      approvals = new ApprovalDesk({
        store: new ApprovalStore(await openBucket(nc, "approvals"), log),
        requests,
        js,
        nc,
        quotas,
        auditor,
        policy,
        api: transport.api,
        channel: config.SLACK_APPROVALS_CHANNEL ?? config.SLACK_NOTIFY_CHANNEL,
        groups,
        allowed,
        log: log.child({ component: "approvals" }),
        now,
        sweepMs: config.APPROVALS_SWEEP_S * 1000,
        metrics: gm,
      });
      slash = new SlashCommands({ nc, js, requests, confirmations, rate, quotas, auditor, pause, replier, allowed, policy, groups, log, metrics: gm, now, approvals, vcenters });
      click = { store: confirmations, requests, js, quotas, auditor, allowed, log, metrics: gm, now, ...(groups.active ? { groups } : {}) };
      const clicks = click;
      const desk = approvals;
      const commands = slash;
      const api = transport.api;
      // View metadata is signed with a key derived from the app's own secret: the same on every replica.
      const secret = config.SLACK_SIGNING_SECRET ?? config.SLACK_BOT_TOKEN;
      if (api && secret) {
        const f = new Forms({ api, signer: new MetadataSigner(secret), policy, groups, nc, replier, allowed, run: (p, a, m) => commands.run(p, a, m), log: log.child({ component: "forms" }), now });
        forms = f;
        interactions.onView([FORM_CALLBACKS.create, FORM_CALLBACKS.deploy], (b, a) => f.submit(b, a)).onOptions(TEMPLATE_OPTIONS_ACTION, (b, a) => f.options(b, a));
        const signer = new MetadataSigner(secret);
        const h = new Home({ api, signer, policy, groups, nc, quotas, replier, run: (p, a) => commands.run(p, a), approvalsFor: approvalsFor ?? ((actor: Actor) => homeApprovals(desk, actor)), log: log.child({ component: "home" }), now });
        home = h;
        interactions.onEvent("app_home_opened", (b) => h.opened(b)).onAction(HOME_PAGE_ACTION, (b) => h.page(b));
      } else {
        log.info("forms are off: `/iaas create` alone needs SLACK_BOT_TOKEN to open a modal");
      }
      interactions
        .onAction([CONFIRM_ACTION, CANCEL_ACTION], (body) => handleClick(clicks, body))
        .onAction([APPROVE_ACTION, REJECT_ACTION], (body) => desk.click(body))
        .onView(REJECT_VIEW, (b, a) => desk.submitReason(b, a))
        .onAction(RUN_ACTION, (body) => handleRunClick({ slash: (b, ack) => commands.handle(b, ack), allowed, log, ...(home ? { home: (b: unknown) => home!.run(b) } : {}) }, body));
      relay = await startResultRelay({ js, requests, replier, log, metrics: gm, ...(home ? { onFinal: (u: string) => home!.refresh(u) } : {}) });
      if (transport.postMessage) {
        notices = await startNoticeRelay({ js, posted: await openBucket(nc, "notices"), postMessage: transport.postMessage, channel: config.SLACK_NOTIFY_CHANNEL, log, metrics: gm });
      } else {
        log.info("notices are not relayed: set SLACK_BOT_TOKEN (and SLACK_NOTIFY_CHANNEL for IT's notices) to post them");
      }
      try {
        // Membership is read before Slack's requests are taken (bounded; a failure only logs), so
        // a group member is not refused for the first moments after a restart.
        await groups.start();
        // Every replica sweeps: reminders, expiry and a crashed replica's unpublished approvals, each settled by compare-and-set.
        approvals.start();
        return await transport.start();
      } catch (err) {
        groups.stop();
        await approvals.stop();
        await notices?.stop();
        await relay.stop();
        throw err;
      }
    },
    stop: async () => {
      groups.stop();
      home?.stop();
      await transport.stop();
      await approvals?.stop();
      await slash?.stop();
      await notices?.stop();
      await relay?.stop();
      await auditor?.flush();
    },
    slackReady: () => transport.socketConnected?.() ?? true,
  };
}

/** The approvals a user may decide, for their App Home: one line each, with the card's Approve / Reject buttons. */
async function homeApprovals(desk: ApprovalDesk, actor: Actor): Promise<HomeApproval[]> {
  const { toDecide } = await desk.pendingFor(actor);
  return toDecide.slice(0, 10).map((r) => ({
    summary: `<@${r.requester}>: ${r.summary} (rule \`${r.rule}\`)`,
    buttons: [{ type: "actions", block_id: `approval-home-${r.id}`, elements: [button(APPROVE_ACTION, "Approve", r.id, "primary"), button(REJECT_ACTION, "Reject", r.id, "danger")] }],
  }));
}
