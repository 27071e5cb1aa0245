import { Buckets, CommandAreas, Consumers, ServiceNames, Streams, Subjects, type CommandArea, type StreamName } from "./subjects.js";
import { ProxyEndpoints, type ProxyEndpointName } from "./proxy.js";
import { NoticeSchema, noticeSubject, type NoticeKind } from "./notices.js";

/**
 * Least-privilege NATS permissions: one user per service and an `admin`. deploy/nats/gen.ts turns
 * this into deploy/nats/nats-server.conf and the Helm values; test/deploy proves every allowance and
 * denial against a real nats-server. A service that needs a new subject gets it here, nowhere else.
 *
 * Rules this encodes:
 * - only the gateway (and admin) publish commands; only command handlers publish results;
 * - the bridge publishes `vsphere.event.>` and reads nothing but its own JetStream acks;
 * - only vcenter-proxy subscribes `vcenter.>`; callers may request only the endpoints they use
 *   (the gateway only read-only ones, remediation never create/clone/destroy);
 * - services never create or change streams, consumers or buckets: the admin's bootstrap
 *   (deploy/nats/bootstrap.mjs) makes them from Streams / Consumers / Buckets, services only `INFO`
 *   them, which is all runtime's ensureStreams / ensureConsumer / openBucket do when they exist;
 * - every service answers the micro-service API (`$SRV.PING|INFO|STATS`) for its own name only,
 *   and only admin may ask it (no service publishes `$SRV.>`).
 *
 * Replies: each service user connects with its own inbox prefix (`_INBOX_<user>`, set by runtime's
 * connectNats from the service name) and may subscribe only that, so no user can read replies
 * meant for another. A responder may publish only into the inboxes of the users allowed to ask it
 * (derived below from the publish grants), never through `allow_responses`: a request's reply
 * subject is chosen by its sender and nats-server checks no permission on it, and a reply allowed
 * by `allow_responses` passes even a publish deny list (nats-server falls back to its reply map when
 * the static check refuses). So a reply subject such as `$JS.API.STREAM.PURGE.IAAS_AUDIT` is
 * refused by the server, whatever the responder's code does.
 */

/** A subject (may hold wildcards) and why the user needs it; the reason is written into the config. */
export interface Grant {
  subject: string;
  why: string;
  /** On a subscription: its requests are answered, so the askers' inboxes become publish grants. */
  answered?: true;
}

export type NatsUserName = "admin" | (typeof ServiceNames)[keyof typeof ServiceNames];

export interface NatsUserPermissions {
  user: NatsUserName;
  description: string;
  /** Allow lists: anything not listed is denied. Replies to requests are grants on the askers' inboxes. */
  publish: Grant[];
  subscribe: Grant[];
}

// --- protocol subjects (NATS, JetStream, KV, micro); product names always come from contracts ---

/**
 * A user's own inbox prefix: replies to its requests, JetStream API answers, publish acks and
 * pulled messages arrive under it. Runtime's connectNats sets it from the service name.
 */
export function inboxPrefixFor(user: string): string {
  return user === "admin" ? NATS_INBOX : `${NATS_INBOX}_${user}`;
}

/** The NATS clients' default inbox prefix; the admin keeps it, so the NATS CLI gets answers as it is. */
const NATS_INBOX = "_INBOX";

const JS_API = "$JS.API";

/** JetStream API subjects a client uses, built from stream and consumer names. */
export const JsApi = {
  accountInfo: `${JS_API}.INFO`,
  streamInfo: (stream: string) => `${JS_API}.STREAM.INFO.${stream}`,
  consumerInfo: (stream: string, durable: string) => `${JS_API}.CONSUMER.INFO.${stream}.${durable}`,
  /** Pull requests for a durable consumer. */
  consumerNext: (stream: string, durable: string) => `${JS_API}.CONSUMER.MSG.NEXT.${stream}.${durable}`,
  /** Acks, naks, `working` and `term` of messages delivered by a durable consumer. */
  ack: (stream: string, durable: string) => `$JS.ACK.${stream}.${durable}.>`,
  /** Direct get (nats-server 2.9+): `.<stream>` by sequence, `.<stream>.<subject>` last by subject. */
  directGet: (stream: string) => `${JS_API}.DIRECT.GET.${stream}`,
  directGetLast: (stream: string) => `${JS_API}.DIRECT.GET.${stream}.>`,
  /** Message get through the stream leader, used when a stream has no direct get. */
  messageGet: (stream: string) => `${JS_API}.STREAM.MSG.GET.${stream}`,
} as const;

/** Key-value buckets are streams named `KV_<bucket>` on subjects `$KV.<bucket>.<key>`. */
export const KvApi = {
  stream: (bucket: string) => `KV_${bucket}`,
  keys: (bucket: string) => `$KV.${bucket}.>`,
} as const;

/** NATS micro-service discovery: `$SRV.<verb>`, `$SRV.<verb>.<name>`, `$SRV.<verb>.<name>.<id>`. */
export const MicroApi = {
  verbs: ["PING", "INFO", "STATS"] as const,
  subjects: (name: string) => MicroApi.verbs.flatMap((v) => [`$SRV.${v}`, `$SRV.${v}.${name}`, `$SRV.${v}.${name}.*`]),
} as const;

/** The first token of every vcenter-proxy endpoint subject (`vcenter`), as a wildcard. */
export const ProxySubjectsAll = (() => {
  const roots = [...new Set(Object.values(ProxyEndpoints).map((e) => e.subject.split(".")[0]!))];
  if (roots.length !== 1) throw new Error(`vcenter-proxy endpoints must share one root token, got ${roots.join(", ")}`);
  return `${roots[0]}.>`;
})();

// --- building blocks --------------------------------------------------------------------------

type ConsumerRef = { stream: string; durable: string };

function service(name: string): Grant[] {
  return [
    { subject: `${inboxPrefixFor(name)}.>`, why: "its own inbox: replies, JetStream API answers, publish acks, pulled messages" },
    ...MicroApi.subjects(name).map((subject) => ({ subject, why: `micro-service discovery for ${name}`, answered: true as const })),
  ];
}

function jetStreamClient(streams: StreamName[]): Grant[] {
  return [
    { subject: JsApi.accountInfo, why: "JetStream availability check when the client starts" },
    ...streams.map((s) => ({ subject: JsApi.streamInfo(Streams[s].name), why: `ensureStreams: ${Streams[s].name} exists (never created here)` })),
  ];
}

function durable(c: ConsumerRef): Grant[] {
  const what = `${c.stream} > ${c.durable}`;
  return [
    { subject: JsApi.consumerInfo(c.stream, c.durable), why: `ensureConsumer / consumers.get: ${what}` },
    { subject: JsApi.consumerNext(c.stream, c.durable), why: `pull from ${what}` },
    { subject: JsApi.ack(c.stream, c.durable), why: `ack, nak, working, term on ${what}` },
  ];
}

function bucket(name: string): Grant[] {
  const stream = KvApi.stream(name);
  return [
    { subject: KvApi.keys(name), why: `put, create, update, delete in bucket ${name}` },
    { subject: JsApi.streamInfo(stream), why: `openBucket: ${name} exists (never created here)` },
    // Buckets have no direct get (allow_direct false): its answer would be the stored value, raw,
    // on whatever reply subject the asker chose. A message get answers in a JSON wrapper.
    { subject: JsApi.messageGet(stream), why: `get from ${name} (a message get: buckets have no direct get)` },
  ];
}

/** Read-only access to a bucket: no `$KV.<bucket>.>` publish, so no put or delete. */
function readBucket(name: string): Grant[] {
  const stream = KvApi.stream(name);
  return [
    { subject: JsApi.streamInfo(stream), why: `openBucket: ${name} exists (never created here)` },
    { subject: JsApi.messageGet(stream), why: `get from ${name}, read only (a message get: buckets have no direct get)` },
  ];
}

function calls(endpoints: ProxyEndpointName[]): Grant[] {
  return endpoints.map((e) => ({ subject: ProxyEndpoints[e].subject, why: `request vcenter-proxy ${ProxyEndpoints[e].name}` }));
}

/** The notice subjects of the kinds starting with `prefix` (`remediation.`, `command.`). */
function notices(prefix: string, why: string): Grant[] {
  const kinds = NoticeSchema.shape.kind.options.filter((k: NoticeKind) => k.startsWith(prefix));
  if (!kinds.length) throw new Error(`no notice kinds start with ${prefix}`);
  return kinds.map((k: NoticeKind) => ({ subject: noticeSubject(k), why: `${why} (${k})` }));
}

function stream(s: StreamName, why: string): Grant[] {
  return Streams[s].subjects.map((subject) => ({ subject, why }));
}

/** `iaas.dlq.<area>.<action>` for each action of an area: a handler dead-letters only its own commands. */
function deadLetters(area: CommandArea): Grant[] {
  return CommandAreas[area].map((action) => ({ subject: Subjects.deadLetter(area, action), why: `dead-letter ${area}.${action} commands` }));
}

// --- the users ------------------------------------------------------------------------------

const users: NatsUserPermissions[] = [
  {
    user: "admin",
    description: "operators (NATS CLI) and the bootstrap that creates streams, consumers and buckets",
    publish: [{ subject: ">", why: "everything, including commands and the JetStream API" }],
    subscribe: [{ subject: ">", why: "everything" }],
  },
  {
    user: ServiceNames.gateway,
    description: "Slack in, commands out, results and notices back to Slack",
    publish: [
      { subject: Subjects.commandsAll, why: "publish commands (JetStream)" },
      ...stream("audit", "audit refused commands"),
      ...jetStreamClient(["commands", "results", "audit", "deadLetters", "notices"]),
      ...bucket(Buckets.requests.name),
      ...bucket(Buckets.confirmations.name),
      ...bucket(Buckets.rateLimits.name),
      ...bucket(Buckets.notices.name),
      ...bucket(Buckets.quotas.name),
      ...bucket(Buckets.remediationControl.name),
      ...bucket(Buckets.approvals.name),
      ...durable(Consumers.gatewayResults),
      ...durable(Consumers.gatewayNotices),
      // info, list, templates, quota, snapshot list: read-only answers; vm-get and vm-usage also decide refusals in the ack
      ...calls(["vmGet", "vmInfo", "vmList", "vmUsage", "templateList", "snapshotList"]),
      { subject: JsApi.messageGet(Streams.audit.name), why: "`/iaas audit` reads the newest audit records by sequence" },
    ],
    subscribe: service(ServiceNames.gateway),
  },
  {
    user: ServiceNames.power,
    description: "runs iaas.cmd.power.* through vcenter-proxy",
    publish: [
      ...stream("results", "progress and final results"),
      ...stream("audit", "audit every command outcome"),
      ...notices("command.", "tell the Slack notify channel (JetStream)"),
      ...deadLetters("power"),
      ...jetStreamClient(["commands", "results", "audit", "deadLetters", "notices"]),
      ...durable(Consumers.power),
      ...bucket(Buckets.commandState.name),
      ...calls(["vmGet", "vmPower"]),
    ],
    subscribe: service(ServiceNames.power),
  },
  {
    user: ServiceNames.vmLifecycle,
    description: "runs iaas.cmd.vm.* (create, clone, deploy, delete, resize) and iaas.cmd.snapshot.* through vcenter-proxy; sweeps old snapshots",
    publish: [
      ...stream("results", "progress and final results"),
      ...stream("audit", "audit every command outcome"),
      ...notices("command.", "tell the Slack notify channel (JetStream)"),
      ...notices("snapshot.", "tell a snapshot's owner the sweep deleted it (JetStream)"),
      ...deadLetters("vm"),
      ...deadLetters("snapshot"),
      ...jetStreamClient(["commands", "results", "audit", "deadLetters", "notices"]),
      ...durable(Consumers.vmLifecycle),
      ...durable(Consumers.vmSnapshots),
      ...bucket(Buckets.commandState.name),
      ...bucket(Buckets.quotas.name),
      // the retention sweep's claims: each old snapshot is deleted by one replica, once
      ...bucket(Buckets.snapshotSweep.name),
      // an approved command is checked against its approval record, which only the gateway writes
      ...readBucket(Buckets.approvals.name),
      // create, clone/deploy, delete (the proxy powers off first), resize, owner, a new VM's lease; vm-usage counts
      // quotas, vm-info gives a clone's source disks (its size for the quota); snapshots, and the
      // sweep's read of the snapshots iaas made
      ...calls(["vmGet", "vmInfo", "vmList", "vmUsage", "vmCreate", "vmClone", "vmDestroy", "vmReconfigure", "vmSetOwner", "snapshotList", "snapshotCreate", "snapshotRevert", "snapshotRemove", "snapshotsMade", "vmSetLease"]),
    ],
    subscribe: service(ServiceNames.vmLifecycle),
  },
  {
    user: ServiceNames.leaseKeeper,
    description: "runs iaas.cmd.lease.* and the lease keeper: reminders, power-off at the end, delete (or keep) after the grace",
    publish: [
      ...stream("results", "progress and final results"),
      ...stream("audit", "audit every command outcome, every reminder and every lease action"),
      ...notices("command.", "tell the Slack notify channel (JetStream)"),
      ...notices("lease.", "tell the owner, the team's channel or IT (JetStream)"),
      ...deadLetters("lease"),
      ...jetStreamClient(["commands", "results", "audit", "deadLetters", "notices"]),
      ...durable(Consumers.leaseKeeper),
      ...bucket(Buckets.commandState.name),
      ...bucket(Buckets.leases.name),
      // an extend past the max is checked against its approval record, which only the gateway writes
      ...readBucket(Buckets.approvals.name),
      // the VM as vCenter has it before each step, the leased VMs page by page, the lease itself,
      // the power-off at the end (and on, when an Extend asks), the delete after the grace
      ...calls(["vmGet", "vmLeases", "vmSetLease", "vmPower", "vmDestroy"]),
    ],
    subscribe: service(ServiceNames.leaseKeeper),
  },
  {
    user: ServiceNames.remediation,
    description: "consumes vSphere events, fixes what policy allows, tells Slack and the audit stream",
    publish: [
      ...notices("remediation.", "tell the Slack notify channel (JetStream)"),
      ...stream("audit", "audit every action and every decision not to act"),
      ...jetStreamClient(["events", "audit", "results", "notices"]),
      ...durable(Consumers.remediation),
      ...durable(Consumers.remediationResults),
      { subject: JsApi.messageGet(Streams.events.name), why: "read ahead in VSPHERE_EVENTS: has a red alarm changed again since?" },
      ...bucket(Buckets.remediation.name),
      ...readBucket(Buckets.remediationControl.name),
      // vertical scaling (reconfigure, a restart only for opted-in VMs) and datastore evacuation
      ...calls(["vmGet", "vmInfo", "vmReconfigure", "vmPower", "vmRelocate", "datastoreList", "datastoreVms"]),
      // acknowledging in vCenter the alarms it acted on
      ...calls(["alarmAcknowledge"]),
    ],
    subscribe: service(ServiceNames.remediation),
  },
  {
    user: ServiceNames.vcenterProxy,
    description: "the only holder of vCenter credentials; answers vcenter.* requests",
    publish: [],
    subscribe: [...service(ServiceNames.vcenterProxy), { subject: ProxySubjectsAll, why: "serve the vcenter-proxy endpoints (queue group)", answered: true }],
  },
  {
    user: ServiceNames.vebaBridge,
    description: "VEBA CloudEvents in (and the built-in poller's vCenter events), vsphere.event.<Class> out",
    publish: [
      ...stream("events", "publish vSphere events (JetStream)"),
      ...jetStreamClient(["events"]),
      // The built-in poller (POLLER_ENABLED): vCenter's events through the proxy, its checkpoint in KV.
      ...calls(["eventsRead"]),
      ...bucket(Buckets.eventPoller.name),
    ],
    subscribe: service(ServiceNames.vebaBridge),
  },
];

/**
 * The grants a responder needs to answer: the inbox of every user whose publish grants reach a
 * subject it answers, and nothing else. Derived, so a new caller of an endpoint gets its answers
 * without a second edit, and a reply subject outside those inboxes is a permission violation.
 */
function replyGrants(u: NatsUserPermissions): Grant[] {
  const answered = u.subscribe.filter((g) => g.answered).map((g) => g.subject);
  // The admin is in the JetStream account: its requests arrive through an import (importedReplies).
  const askers = users.filter((a) => a.user !== u.user && a.user !== "admin" && a.publish.some((g) => answered.some((s) => subjectsOverlap(g.subject, s))));
  return askers.map((a) => ({ subject: `${inboxPrefixFor(a.user)}.>`, why: `answer ${a.user}'s requests (its inbox only)` }));
}

/**
 * The admin's micro-service discovery reaches the services through an import from the JetStream
 * account, and nats-server rewrites such a request's reply subject to `_R_.…` in the services'
 * account: the services answer it there (the server maps it back to the admin's inbox).
 */
const IMPORTED_REPLIES = "_R_.>";

function importedReplies(u: NatsUserPermissions): Grant[] {
  if (u.user === "admin" || !u.subscribe.some((g) => g.subject.startsWith("$SRV."))) return [];
  return [{ subject: IMPORTED_REPLIES, why: "answer admin's micro-service discovery (its requests arrive through an import)" }];
}

/** Every user, the responders with grants to answer exactly the users that may ask them. */
export const NatsPermissions: readonly NatsUserPermissions[] = users.map((u) => ({ ...u, publish: [...u.publish, ...replyGrants(u), ...importedReplies(u)] }));

// --- accounts -------------------------------------------------------------------------------

/**
 * JetStream, its data and the admin live in one account (the name it always had); the services in
 * another. JetStream sends its answers (publish acks, API responses, ack replies, pulled messages)
 * to the reply subject the asker chose, and no user permission applies to them: with the services
 * in their own account such an answer lands there, where no stream-changing API exists.
 */
export const JetStreamAccount = "IAAS";
export const AppsAccount = "IAAS_APPS";

/** What must never cross into the services' account, whatever a grant says. */
const NEVER_SHARED = [`${JS_API}.STREAM.CREATE.`, `${JS_API}.STREAM.UPDATE.`, `${JS_API}.STREAM.DELETE.`, `${JS_API}.STREAM.PURGE.`, `${JS_API}.DIRECT.`, `${JS_API}.CONSUMER.CREATE.`, `${JS_API}.CONSUMER.DURABLE.`, `${JS_API}.CONSUMER.DELETE.`];

/** Whether a subject is served by JetStream: its API, acks, buckets or a stream's subjects. */
function isJetStreamSubject(subject: string): boolean {
  if (subject.startsWith("$JS.") || subject.startsWith("$KV.")) return true;
  return Object.values(Streams).some((s) => s.subjects.some((x) => subjectsOverlap(x, subject)));
}

/** Whether every subject `b` matches is matched by `a`. */
function covers(a: string, b: string): boolean {
  const x = a.split(".");
  const y = b.split(".");
  for (let i = 0; i < x.length; i++) {
    if (x[i] === ">") return y.length > i;
    if (i >= y.length) return false;
    if (y[i] === ">") return false;
    if (x[i] !== "*" && x[i] !== y[i]) return false;
  }
  return x.length === y.length;
}

/**
 * The subjects the JetStream account exports to the services' account as services (so answers
 * come back): every JetStream subject a service user may publish, nothing wider. A subject covered
 * by a wider one is left out (two imports of one subject would deliver it twice).
 */
export function crossAccountSubjects(): Grant[] {
  const all = new Map<string, string>();
  for (const u of NatsPermissions) {
    if (u.user === "admin") continue;
    for (const g of u.publish) if (isJetStreamSubject(g.subject) && !all.has(g.subject)) all.set(g.subject, g.why);
  }
  const subjects = [...all.keys()].filter((s) => ![...all.keys()].some((o) => o !== s && covers(o, s)));
  for (const s of subjects) {
    if (NEVER_SHARED.some((p) => s.startsWith(p)) || s === ">" || s.startsWith(`${JS_API}.>`)) throw new Error(`${s} must not cross into ${AppsAccount}`);
  }
  return subjects.sort().map((subject) => ({ subject, why: all.get(subject)! }));
}

/**
 * Whether a request's reply subject is an inbox (`_INBOX.…`, or `_INBOX_<name>.…` as
 * inboxPrefixFor builds it). Responders answer nothing else: a reply subject is chosen by the
 * sender, and an answer sent to `$JS.API…` or `iaas.cmd…` would be a JetStream call or a command
 * published under the responder's name. Which inboxes a responder may reach is the server's
 * business (the reply grants above); this refuses every subject that is not an inbox at all.
 */
export function isReplyInbox(reply: string | undefined): boolean {
  const first = reply?.split(".", 1)[0] ?? "";
  const hasRest = !!reply && reply.length > first.length + 1;
  return hasRest && (first === NATS_INBOX || (first.startsWith(`${NATS_INBOX}_`) && first.length > NATS_INBOX.length + 1));
}

export function natsUser(name: NatsUserName): NatsUserPermissions {
  const u = NatsPermissions.find((p) => p.user === name);
  if (!u) throw new Error(`no NATS user ${name}`);
  return u;
}

/** The environment variable that holds a user's password, for the server config and the services. */
export function natsPasswordEnv(name: NatsUserName): string {
  return `NATS_PASSWORD_${name.toUpperCase().replace(/-/g, "_")}`;
}

/**
 * NATS subject matching (`*` one token, `>` the rest), to check a subject against grants without
 * a server: the same rule nats-server applies to permission lists.
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== "*" && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/** Whether some subject matches both patterns (`*` one token, `>` one or more). */
export function subjectsOverlap(a: string, b: string): boolean {
  const x = a.split(".");
  const y = b.split(".");
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] === ">" || y[i] === ">") return i < x.length && i < y.length;
    if (x[i] === undefined || y[i] === undefined) return false;
    if (x[i] !== "*" && y[i] !== "*" && x[i] !== y[i]) return false;
  }
  return true;
}

export function mayPublish(name: NatsUserName, subject: string): boolean {
  return natsUser(name).publish.some((g) => subjectMatches(g.subject, subject));
}

export function maySubscribe(name: NatsUserName, subject: string): boolean {
  return natsUser(name).subscribe.some((g) => subjectMatches(g.subject, subject));
}
