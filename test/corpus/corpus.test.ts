/**
 * The bad-input corpus (test/corpus/*.json) sent through the real system: services as child
 * processes, signed HTTP to the gateway, HTTP to veba-bridge, raw NATS publishes. Every case must
 * get a clear coded error (or its documented benign answer); afterwards every service still
 * answers $SRV.PING, none exited, and vCenter is exactly as it was (names, power states, CPU,
 * memory of every VM). Prints how many cases each category tried and how many passed.
 */
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { ErrorCatalogue, Headers, Streams, type FinalResult } from "@iaas/contracts";
import { postSigned, slashCommandBody, slackSignature, type PostResult } from "@iaas/testkit";
import { ADMIN, BRIDGE_TOKEN, FaultSystem, SIGNING_SECRET, TEAM, commandIdOf, until, type ServiceSpec, type VmState } from "../faults/lib/system.js";
import { isBuilt, type ServiceName } from "../faults/lib/procs.js";

// ---------------------------------------------------------------------------------------------
// The corpus files

type Expand = string | { $repeat: string; times: number } | { $concat: Expand[] };
interface Corpus<C> {
  description: string;
  cases: C[];
}
const load = <C>(file: string): Corpus<C> => JSON.parse(readFileSync(new URL(file, import.meta.url), "utf8")) as Corpus<C>;

/** `{ $repeat, times }` and `{ $concat }` anywhere in a case become the strings they stand for. */
function expand(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(expand);
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (typeof o.$repeat === "string" && typeof o.times === "number") return o.$repeat.repeat(o.times);
    if (Array.isArray(o.$concat)) return o.$concat.map((x) => expand(x as Expand)).join("");
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, expand(x)]));
  }
  return v;
}
const repeatText = (t: string | { repeat: string; times: number; prefix?: string; suffix?: string }) =>
  typeof t === "string" ? t : `${t.prefix ?? ""}${t.repeat.repeat(t.times)}${t.suffix ?? ""}`;
const nest = (r: { prefix: string; open: string; close: string; times: number }) => `${r.prefix}${r.open.repeat(r.times)}${r.close.repeat(r.times)}`;

type Outcome = "refused" | "failed" | "answered" | "confirm";
interface SlashCase {
  name: string;
  text: string | { repeat: string; times: number; prefix?: string; suffix?: string };
  expect: Outcome | Outcome[];
  codes?: string[];
  user?: "admin";
  fields?: Record<string, string>;
}
interface HttpCase {
  name: string;
  text?: string;
  raw?: unknown;
  contentType?: string;
  sign?: "wrong-secret" | "none" | "other-body" | "no-prefix" | "bad-timestamp";
  timestampOffset?: number;
  method?: string;
  path?: string;
  /** A 200 means the command was taken (one command published); otherwise nothing may be. */
  mayRun?: boolean;
  expect: { status: number | number[] };
}
interface InteractiveCase {
  name: string;
  /** Run after everything else, in its own test (a case that has been seen to crash a service). */
  last?: boolean;
  payload?: unknown;
  raw?: string;
  rawRepeat?: { prefix: string; open: string; close: string; times: number };
  expect: { status: number | number[]; notice: string };
}
interface CloudEventCase {
  name: string;
  contentType?: string;
  headers?: Record<string, string>;
  raw?: unknown;
  rawBase64?: string;
  rawRepeat?: { prefix: string; open: string; close: string; times: number };
  event?: unknown;
  batch?: { copies: number; event: unknown };
  method?: string;
  path?: string;
  /** The bridge requires BRIDGE_TOKEN: sent as a bearer token unless this says otherwise. */
  auth?: "none" | "wrong-bearer" | "basic";
  expect: { status: number | number[]; reason?: string };
}
interface NatsCase {
  name: string;
  subject?: string;
  request?: string;
  body?: unknown;
  raw?: string;
  rawRepeat?: { prefix: string; open: string; close: string; times: number };
  headers?: Record<string, string>;
  sameIdAs?: string;
  newMsgId?: boolean;
  expect: { result: "failed" | "none" | "publish-refused" | "duplicate" | "replayed" | "service-error" | "service-ok-or-error"; codes?: string[]; consumed?: boolean };
}

const slashCorpus = load<SlashCase>("./slash.json");
const httpCorpus = load<HttpCase>("./http.json");
const interactiveCorpus = load<InteractiveCase>("./interactive.json");
const cloudEventCorpus = load<CloudEventCase>("./cloudevents.json");
const natsCorpus = load<NatsCase>("./nats.json");

// ---------------------------------------------------------------------------------------------
// Checks every answer gets

const STACK_LIKE = /\bat \S+ \(?\S+:\d+:\d+\)?|node:internal|\/node_modules\/|\bTypeError\b|\bReferenceError\b/;
const CODES = new Set(Object.keys(ErrorCatalogue));
const asList = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

function clearText(s: string, what: string): string | undefined {
  if (STACK_LIKE.test(s)) return `${what} looks like a stack trace: ${s.slice(0, 300)}`;
  if (s.includes(SIGNING_SECRET)) return `${what} contains the signing secret`;
  return undefined;
}

interface Tally {
  tried: number;
  passed: number;
  failures: string[];
}
const tallies = new Map<string, Tally>();
function tally(category: string): Tally {
  let t = tallies.get(category);
  if (!t) tallies.set(category, (t = { tried: 0, passed: 0, failures: [] }));
  return t;
}
async function runCase(category: string, name: string, fn: () => Promise<string[]>): Promise<void> {
  const t = tally(category);
  t.tried += 1;
  let problems: string[];
  try {
    problems = await fn();
  } catch (err) {
    problems = [`threw: ${String((err as Error).stack ?? err).slice(0, 600)}`];
  }
  if (problems.length === 0) t.passed += 1;
  else t.failures.push(`${name}: ${problems.join("; ")}`);
}

// ---------------------------------------------------------------------------------------------

describe("bad-input corpus through the real system", () => {
  let sys: FaultSystem;
  let before: VmState[];
  let gatewayMetrics = "";
  let userN = 0;
  const absent: { url: string; name: string }[] = [];
  const kinds: ServiceName[] = ["vcenter-proxy", "power", ...(["vm-lifecycle", "remediation"] as const).filter(isBuilt), "veba-bridge", "gateway"];

  beforeAll(async () => {
    sys = await FaultSystem.start({ name: "corpus", services: kinds.map((name): ServiceSpec => ({ name })), env: { power: { POWER_TIMEOUT_MS: "10000" } } });
    // Fixtures: a protected VM that is on and an ordinary VM that is off, made over SOAP.
    await sys.createVms(["prod-db01", "corpus-off"]);
    const prod = await sys.findVm("prod-db01");
    await (await sys.observer.vm(prod!).powerOn()).wait({ timeoutMs: 30_000 });
    gatewayMetrics = `${sys.svc("gateway").ready!.healthUrl}/metrics`;
    before = await sys.vmSnapshot();
  }, 120_000);

  afterAll(async () => {
    const lines = [...tallies].map(([c, t]) => `  ${c.padEnd(12)} ${String(t.tried).padStart(4)} tried ${String(t.passed).padStart(4)} passed`);
    const total = [...tallies.values()].reduce((a, t) => ({ tried: a.tried + t.tried, passed: a.passed + t.passed }), { tried: 0, passed: 0 });
    process.stdout.write(`[corpus] cases per category:\n${lines.join("\n")}\n  ${"total".padEnd(12)} ${String(total.tried).padStart(4)} tried ${String(total.passed).padStart(4)} passed\n`);
    await sys?.dispose();
  });

  const user = () => `UC${(++userN).toString(36).toUpperCase().padStart(5, "0")}`;
  const commandsSeq = async () => (await sys.jsm.streams.info(Streams.commands.name)).state.last_seq;
  const resultsSeq = async () => (await sys.jsm.streams.info(Streams.results.name)).state.last_seq;

  /** `iaas_commands_total` series of the gateway, by label set. */
  async function counters(): Promise<Map<string, number>> {
    const text = await (await fetch(gatewayMetrics)).text();
    const m = new Map<string, number>();
    for (const line of text.split("\n")) {
      const r = /^iaas_commands_total\{([^}]*)\} (\S+)$/.exec(line);
      if (r) m.set(r[1]!, Number(r[2]));
    }
    return m;
  }
  /** The one series that moved: how the gateway classed the request (verb, outcome, code). */
  async function classified(prior: Map<string, number>): Promise<Record<string, string>> {
    const moved = await until("the gateway to count the request", async () => {
      const now = await counters();
      const d = [...now].filter(([k, v]) => v > (prior.get(k) ?? 0)).map(([k]) => k);
      return d.length > 0 && d;
    }, 10_000);
    if (moved.length !== 1) throw new Error(`more than one counter moved: ${moved.join(" | ")}`);
    return Object.fromEntries([...moved[0]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
  }
  const textOf = (r: PostResult) => String((r.json as { text?: unknown } | undefined)?.text ?? r.body);

  async function finalOf(id: string, timeoutMs = 30_000): Promise<FinalResult[]> {
    return (await sys.waitFinals([id], timeoutMs, `the final result of ${id}`)).get(id)!;
  }

  it(`slash commands (${slashCorpus.cases.length} cases)`, async () => {
    for (const c of slashCorpus.cases) {
      await runCase("slash", c.name, async () => {
        const problems: string[] = [];
        const triggerId = `${Date.now()}.${randomUUID()}`;
        const fields = { text: repeatText(c.text), team_id: TEAM, user_id: c.user === "admin" ? ADMIN : user(), channel_id: "C0CORPUS", trigger_id: triggerId, response_url: sys.slack.responseUrl(), ...(c.fields ?? {}) };
        const id = commandIdOf(fields.team_id, fields.trigger_id);
        const [prior, seq0] = [await counters(), await commandsSeq()];
        const r = await postSigned(sys.gatewayUrl(), slashCommandBody(fields), { secret: SIGNING_SECRET });
        if (r.status !== 200) return [`HTTP ${r.status}: ${r.body.slice(0, 200)}`];
        const ack = textOf(r);
        if (!ack.trim()) problems.push("empty ack");
        const unclear = clearText(r.body, "ack");
        if (unclear) problems.push(unclear);
        const got = await classified(prior);
        const outcome: Outcome | undefined = got.outcome === "rejected" || got.outcome === "limited" ? "refused" : got.outcome === "accepted" ? "failed" : got.outcome === "answered" ? "answered" : got.outcome === "confirm" ? "confirm" : undefined;
        if (!outcome || !asList(c.expect).includes(outcome)) return [...problems, `expected ${asList(c.expect).join("|")}, the gateway said ${got.outcome} ${got.code ?? ""} (${ack.slice(0, 160)})`];
        if (outcome === "refused") {
          if (!got.code || !CODES.has(got.code)) problems.push(`refused without a catalogue code (${got.code})`);
          if (c.codes && !c.codes.includes(got.code!)) problems.push(`code ${got.code}, expected ${c.codes.join("|")} (${ack.slice(0, 160)})`);
          if (!ack.includes(":warning:") && !ack.includes(":no_entry")) problems.push(`a refusal that does not look like one: ${ack.slice(0, 120)}`);
        }
        if (outcome === "failed") {
          const f = await finalOf(id);
          if (f.length !== 1) problems.push(`${f.length} final results`);
          const r0 = f[0]!;
          if (r0.status !== "failed") problems.push(`expected a failed result, got ${r0.status}: ${"message" in r0 ? r0.message : ""}`);
          else {
            if (c.codes && !c.codes.includes(r0.error.code)) problems.push(`result code ${r0.error.code}, expected ${c.codes.join("|")} (${r0.error.message})`);
            const u = clearText(r0.error.message, "result");
            if (u) problems.push(u);
          }
          if ((await commandsSeq()) !== seq0 + 1) problems.push("not exactly one command published");
        } else if ((await commandsSeq()) !== seq0) problems.push("a command was published");
        return problems;
      });
    }
    expect(tally("slash").failures).toEqual([]);
  }, 300_000);

  it(`HTTP requests that are not valid Slack requests (${httpCorpus.cases.length} cases)`, async () => {
    for (const c of httpCorpus.cases.map((x) => expand(x) as HttpCase)) {
      await runCase("http", c.name, async () => {
        const seq0 = await commandsSeq();
        const body = c.raw !== undefined ? String(c.raw) : slashCommandBody({ text: c.text ?? "help", team_id: TEAM, user_id: user(), response_url: sys.slack.responseUrl() });
        const ts = Math.floor(Date.now() / 1000) + (c.timestampOffset ?? 0);
        const headers: Record<string, string> = { "content-type": c.contentType ?? "application/x-www-form-urlencoded" };
        if (c.sign !== "none") {
          headers["x-slack-request-timestamp"] = c.sign === "bad-timestamp" ? "yesterday" : String(ts);
          const sig = slackSignature(c.sign === "wrong-secret" ? "wrong-secret" : SIGNING_SECRET, ts, c.sign === "other-body" ? `${body}&x=1` : body);
          headers["x-slack-signature"] = c.sign === "no-prefix" ? sig.slice(3) : sig;
        }
        const url = new URL(c.path ?? "/slack/events", sys.gatewayUrl());
        const res = await fetch(url.href.replace("/slack/events/../../admin", "/slack/events/%2E%2E/%2E%2E/admin"), { method: c.method ?? "POST", headers, ...(c.method === "GET" ? {} : { body }), signal: AbortSignal.timeout(15_000) });
        const text = await res.text();
        const problems: string[] = [];
        if (!asList(c.expect.status).includes(res.status)) problems.push(`HTTP ${res.status}, expected ${asList(c.expect.status).join("|")}: ${text.slice(0, 200)}`);
        const u = clearText(text, "answer");
        if (u) problems.push(u);
        const published = (await commandsSeq()) - seq0;
        if (published !== (c.mayRun && res.status === 200 ? 1 : 0)) problems.push(`${published} commands published`);
        return problems;
      });
    }
    expect(tally("http").failures).toEqual([]);
  }, 120_000);

  it(`interactive payloads (${interactiveCorpus.cases.length} cases)`, async () => {
    // A delete waiting for its requester (an admin, who may delete any unprotected VM), one the
    // requester cancelled, and a command that never needed confirming.
    const ask = async () => {
      const triggerId = `${Date.now()}.${randomUUID()}`;
      const r = await postSigned(sys.gatewayUrl(), slashCommandBody({ text: "delete corpus-off", team_id: TEAM, user_id: ADMIN, trigger_id: triggerId, response_url: sys.slack.responseUrl() }), { secret: SIGNING_SECRET });
      const id = commandIdOf(TEAM, triggerId);
      expect(r.body, "the delete asks for confirmation with buttons carrying its id").toContain(id);
      return id;
    };
    const pending = await ask();
    const cancelled = await ask();
    const cancelUrl = sys.slack.responseUrl();
    const click = (payload: unknown) => postSigned(sys.gatewayUrl(), new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), { secret: SIGNING_SECRET });
    await click({ type: "block_actions", user: { id: ADMIN }, team: { id: TEAM }, response_url: cancelUrl, actions: [{ action_id: "iaas.cancel", value: cancelled }] });
    await sys.slack.waitFor(() => sys.slack.postsTo(cancelUrl).some((p) => /Cancelled/.test(String(p.body.text))));
    const executedTrigger = `${Date.now()}.${randomUUID()}`;
    // Published and answered (the VM is on already: a failed result); an unknown VM would be refused at the door, unpublished.
    await postSigned(sys.gatewayUrl(), slashCommandBody({ text: "power on prod-db01", team_id: TEAM, user_id: ADMIN, trigger_id: executedTrigger, response_url: sys.slack.responseUrl() }), { secret: SIGNING_SECRET });
    const executed = commandIdOf(TEAM, executedTrigger);
    await finalOf(executed);
    clickFixtures = { pending, cancelled, executed };

    const seq0 = await commandsSeq();
    for (const c0 of interactiveCorpus.cases.filter((x) => !x.last)) {
      await runInteractive(c0);
    }
    expect(await commandsSeq(), "no click published a command").toBe(seq0);
    expect(tally("interactive").failures).toEqual([]);
  }, 180_000);

  let clickFixtures: { pending: string; cancelled: string; executed: string } | undefined;
  async function runInteractive(c0: InteractiveCase): Promise<void> {
    const { pending, cancelled, executed } = clickFixtures!;
    {
      await runCase("interactive", c0.name, async () => {
        const url = sys.slack.responseUrl();
        const fill = (s: string) =>
          s
            .replaceAll("$PENDING", pending)
            .replaceAll("$CANCELLED", cancelled)
            .replaceAll("$EXECUTED", executed)
            .replaceAll("$UNKNOWN_ID", `r-${randomUUID().replace(/-/g, "").slice(0, 24)}`)
            .replaceAll("$REQUESTER", ADMIN)
            .replaceAll("$OTHER", user())
            .replaceAll("$TEAM", TEAM)
            .replaceAll("$RESPONSE_URL", url);
        const c = expand(c0) as InteractiveCase;
        const body = c.payload !== undefined ? new URLSearchParams({ payload: fill(JSON.stringify(c.payload)) }).toString() : c.rawRepeat ? nest(c.rawRepeat) : fill(c.raw ?? "");
        const r = await postSigned(sys.gatewayUrl(), body, { secret: SIGNING_SECRET, headers: { "content-type": "application/x-www-form-urlencoded" } });
        const problems: string[] = [];
        if (!asList(c.expect.status).includes(r.status)) problems.push(`HTTP ${r.status}, expected ${asList(c.expect.status).join("|")}: ${r.body.slice(0, 200)}`);
        const u = clearText(r.body, "answer");
        if (u) problems.push(u);
        if (c.expect.notice === "none") absent.push({ url, name: c.name });
        else {
          const post = await sys.slack.waitFor(() => sys.slack.postsTo(url)[0], 10_000).catch(() => undefined);
          const text = String(post?.body.text ?? "");
          if (!post) problems.push(`no notice on the response_url (expected one containing "${c.expect.notice}")`);
          else if (!text.includes(c.expect.notice)) problems.push(`notice "${text.slice(0, 160)}" does not contain "${c.expect.notice}"`);
          const u2 = clearText(text, "notice");
          if (u2) problems.push(u2);
        }
        return problems;
      });
    }
  }

  it(`CloudEvents to veba-bridge (${cloudEventCorpus.cases.length} cases)`, async () => {
    const eventsUrl = sys.svc("veba-bridge").ready!.eventsUrl!;
    for (const c of cloudEventCorpus.cases.map((x) => expand(x) as CloudEventCase)) {
      await runCase("cloudevents", c.name, async () => {
        let body: string | Buffer;
        if (c.rawBase64 !== undefined) body = Buffer.from(c.rawBase64, "base64");
        else if (c.rawRepeat) body = nest(c.rawRepeat);
        else if (c.batch) body = JSON.stringify(Array.from({ length: c.batch.copies }, (_, i) => JSON.parse(JSON.stringify(c.batch!.event).replaceAll("$N", String(i)))));
        else if (c.event !== undefined) body = JSON.stringify(c.event);
        else body = String(c.raw ?? "");
        const url = new URL(c.path ?? "/events", eventsUrl);
        const authorization = { none: undefined, "wrong-bearer": `Bearer ${BRIDGE_TOKEN}x`, basic: `Basic ${Buffer.from(`veba:${BRIDGE_TOKEN}`).toString("base64")}` }[c.auth ?? "none"];
        const auth = c.auth === undefined ? `Bearer ${BRIDGE_TOKEN}` : authorization;
        const res = await fetch(url, { method: c.method ?? "POST", headers: { ...(auth ? { authorization: auth } : {}), ...(c.contentType ? { "content-type": c.contentType } : {}), ...(c.headers ?? {}) }, ...(c.method === "GET" ? {} : { body }), signal: AbortSignal.timeout(15_000) });
        const text = await res.text();
        const problems: string[] = [];
        if (!asList(c.expect.status).includes(res.status)) problems.push(`HTTP ${res.status}, expected ${asList(c.expect.status).join("|")}: ${text.slice(0, 240)}`);
        if (res.status >= 400) {
          const e = (JSON.parse(text || "{}") as { error?: { code?: string; reason?: string; message?: string } }).error;
          if (!e?.code || !CODES.has(e.code)) problems.push(`no catalogue code in ${text.slice(0, 200)}`);
          if (c.expect.reason && e?.reason !== c.expect.reason) problems.push(`reason ${e?.reason}, expected ${c.expect.reason} (${e?.message})`);
          if (!e?.message || /[\r\n]/.test(e.message)) problems.push("the message is missing or not one line");
        }
        const u = clearText(text, "answer");
        if (u) problems.push(u);
        if (text.includes(BRIDGE_TOKEN)) problems.push("the answer contains the bridge token");
        return problems;
      });
    }
    expect(tally("cloudevents").failures).toEqual([]);
  }, 120_000);

  it(`raw NATS messages (${natsCorpus.cases.length} cases)`, async () => {
    const idsByName = new Map<string, { id: string; msgId: string }>();
    const consumerIdle = async (subject: string) => {
      const def = subject.startsWith("iaas.cmd.vm.") ? { s: Streams.commands.name, d: "vm-lifecycle" } : { s: Streams.commands.name, d: "power" };
      await until(`consumer ${def.d} to have taken everything`, async () => {
        const i = await sys.jsm.consumers.info(def.s, def.d);
        return i.num_pending === 0 && i.num_ack_pending === 0;
      }, 30_000);
    };
    for (const c0 of natsCorpus.cases) {
      await runCase("nats", c0.name, async () => {
        const ref = c0.sameIdAs ? idsByName.get(c0.sameIdAs) : undefined;
        const id = ref?.id ?? `corpus-${randomUUID().replace(/-/g, "").slice(0, 20)}`;
        const msgId = ref && !c0.newMsgId ? ref.msgId : `${id}-${randomUUID().slice(0, 8)}`;
        idsByName.set(c0.name, { id, msgId });
        const c = expand(c0) as NatsCase;
        const text = c.rawRepeat ? nest(c.rawRepeat) : c.raw !== undefined ? c.raw : JSON.stringify(c.body);
        const data = new TextEncoder().encode(text.replaceAll("$ID", id));
        const h = natsHeaders();
        for (const [k, v] of Object.entries(c.headers ?? {})) h.set(k, v);
        const problems: string[] = [];
        const want = c.expect;

        if (c.request) {
          const m = await sys.nc.request(c.request, data, { timeout: 15_000 });
          const code = m.headers?.get(Headers.serviceErrorCode);
          const body = m.data.length ? (JSON.parse(new TextDecoder().decode(m.data)) as { code?: string; message?: string }) : {};
          if (!code) {
            if (want.result !== "service-ok-or-error") problems.push(`no service error: ${new TextDecoder().decode(m.data).slice(0, 200)}`);
          } else {
            if (!body.code || !CODES.has(body.code)) problems.push(`service error without a catalogue code: ${m.headers?.get(Headers.serviceError)}`);
            if (want.codes && !want.codes.includes(body.code ?? "")) problems.push(`code ${body.code}, expected ${want.codes.join("|")} (${body.message})`);
            const u = clearText(m.headers?.get(Headers.serviceError) ?? "", "service error");
            if (u) problems.push(u);
          }
          return problems;
        }

        const res0 = await resultsSeq();
        let pa: { duplicate: boolean } | undefined;
        try {
          pa = await sys.js.publish(c.subject!, data, { msgID: msgId, headers: h });
        } catch (err) {
          if (want.result === "publish-refused") return [];
          return [`publish failed: ${String(err)}`];
        }
        if (want.result === "publish-refused") return ["NATS took a message over max_payload"];
        if (want.result === "duplicate") return pa.duplicate ? [] : ["JetStream did not drop the repeated Nats-Msg-Id"];
        if (pa.duplicate) return ["JetStream dropped the message as a duplicate"];
        if (want.result === "failed") {
          const f = await finalOf(id);
          if (f.length !== 1) problems.push(`${f.length} final results`);
          const r0 = f[0]!;
          if (r0.status !== "failed") problems.push(`expected a failed result, got ${r0.status}: ${"message" in r0 ? r0.message : ""}`);
          else {
            if (want.codes && !want.codes.includes(r0.error.code)) problems.push(`result code ${r0.error.code}, expected ${want.codes.join("|")} (${r0.error.message})`);
            const u = clearText(r0.error.message, "result");
            if (u) problems.push(u);
          }
          return problems;
        }
        if (want.result === "replayed") {
          await consumerIdle(c.subject!);
          const f = (await sys.finals()).get(id) ?? [];
          if (f.length !== 1) problems.push(`${f.length} final results for the replayed id`);
          return problems;
        }
        // none: the service took the message and dropped it (or nobody takes that subject); no result.
        if (want.consumed) await consumerIdle(c.subject!);
        if ((await resultsSeq()) !== res0) problems.push("a result was published");
        return problems;
      });
    }
    expect(tally("nats").failures).toEqual([]);
  }, 240_000);

  it("afterwards: no service exited, every one answers $SRV.PING, vCenter is unchanged, no stray notices", async () => {
    expect(sys.crashes()).toEqual([]);
    for (const k of kinds) expect(await sys.ping(k), `${k} answers $SRV.PING`).toBeGreaterThanOrEqual(1);
    // Everything asynchronous the cases started (results, remediation) has had the whole run to land.
    await until("the power and vm-lifecycle consumers to be idle", async () => {
      for (const d of ["power", ...(isBuilt("vm-lifecycle") ? ["vm-lifecycle"] : [])]) {
        const i = await sys.jsm.consumers.info(Streams.commands.name, d);
        if (i.num_pending + i.num_ack_pending > 0) return false;
      }
      return true;
    }, 30_000);
    expect(await sys.vmSnapshot(), "vCenter: names, power states, CPU and memory of every VM").toEqual(before);
    const stray = absent.filter((a) => sys.slack.postsTo(a.url).length > 0).map((a) => `${a.name}: ${String(sys.slack.postsTo(a.url)[0]!.body.text).slice(0, 120)}`);
    expect(stray, "payloads that must be ignored were answered").toEqual([]);
  }, 60_000);

  // Cases that have crashed a service: each alone, after the checks above, so a crash shows here
  // and does not turn every later case into "fetch failed".
  for (const c of interactiveCorpus.cases.filter((x) => x.last)) {
    it(`interactive, alone: ${c.name} leaves the gateway running`, async () => {
      const seq0 = await commandsSeq();
      await runInteractive(c);
      await until("the gateway to answer or exit", async () => sys.crashes().length > 0 || (await sys.ping("gateway", 500)) > 0, 10_000);
      expect(sys.crashes(), "the gateway must not exit on a signed but malformed payload").toEqual([]);
      expect(await sys.ping("gateway")).toBe(1);
      expect(await commandsSeq()).toBe(seq0);
      expect(tally("interactive").failures).toEqual([]);
    }, 60_000);
  }
});
