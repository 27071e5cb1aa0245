import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import { createLogger, createMetrics, loadConfig } from "@iaas/runtime";
import { SlackStandIn, blockActionsBody, postSigned, waitUntil } from "@iaas/testkit";
import { gatewayMetrics } from "../src/metrics.js";
import { createSlackTransport } from "../src/transport/slack.js";
import { UserGroups } from "../src/stores/usergroups.js";
import { GatewayEnvSchema } from "../src/mod.js";
import { SECRET, startHarness, testPolicy, type Harness } from "./harness.js";

/**
 * Policy bindings by Slack user group, from Slack: the gateway reads usergroups.list (the
 * stand-in's) in the background and puts the user's groups on the actor. Real HTTP with real
 * signatures; membership changes are waited for by polling, never by time.
 */

const TOKEN = "xoxb-fake-ug1";

/** Everyone may look; power only through @ops, building only through @devs; `power.reset` asks first. */
const groupPolicy = () =>
  testPolicy({
    bindings: [
      { role: "viewer", everyone: true },
      { role: "operator", groups: ["S0OPS"] },
      { role: "builder", groups: ["S0DEVS"] },
    ],
    confirm: ["delete", "power.reset"],
  });

const text = (json: unknown) => String((json as { text?: string }).text ?? "");
const idOf = (json: unknown) => {
  const m = /\(request `(r-[a-z2-7]+)`\)/.exec(text(json));
  if (!m?.[1]) throw new Error(`no request id in ${text(json)}`);
  return m[1];
};
const refreshes = async (h: Harness, outcome: "ok" | "failed") =>
  (await h.metrics.registry.getSingleMetric("iaas_gateway_usergroup_refreshes_total")?.get())?.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
/** Whether `user` may power VMs now, as `help` (which publishes nothing) tells them. */
const mayPower = async (h: Harness, user: string) => text((await h.slash("help", { user_id: user })).json).includes("/iaas power");

describe("gateway: policy bindings by Slack user group", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(
      { SLACK_BOT_TOKEN: TOKEN, SLACK_USERGROUPS_REFRESH_S: "1" },
      {
        policy: groupPolicy(),
        slack: (s) => {
          s.usergroups = [
            // U0ALICE (the harness's default user, who sends its sentinel commands) is an operator.
            { id: "S0OPS", users: ["U0ALICE", "U0BOB"] },
            { id: "S0DEVS", users: ["U0BOB"] },
            { id: "S0UNUSED", users: ["U0CAROL"] },
            { id: "S0OLD", users: ["U0CAROL"], disabled: true },
          ];
        },
      },
    );
  });
  afterAll(async () => {
    await h?.close();
  });

  it("read the membership once before taking requests, with members, enabled groups only, through the bot token's client", () => {
    const first = h.slack.apiCalls("usergroups.list")[0];
    expect(first?.body).toMatchObject({ include_users: "true", include_disabled: "false" });
  });

  it("a member of the bound group may run the command; the published command carries the policy's groups the user is in", async () => {
    const r = await h.slash("power off web-01", { user_id: "U0BOB" });
    const id = idOf(r.json);
    expect(text(r.json)).toBe(`Powering off \`web-01\`… (request \`${id}\`)`);
    const cmds = await h.commands();
    const cmd = cmds.find((c) => c.body.id === id);
    expect(cmd?.body.actor).toEqual({ userId: "U0BOB", teamId: "T0TEAM", channelId: "C0OPS", groups: ["S0OPS", "S0DEVS"], via: "slack" });
  });

  it("a non-member is refused with the usual message and nothing is published; groups the policy does not name are not carried", async () => {
    const leaked = await h.publishedBy(async () => {
      const r = await h.slash("power off web-01", { user_id: "U0CAROL" });
      expect(text(r.json)).toBe(`:warning: You are not allowed to run \`power off\`: it needs the operator or admin role, and you have viewer. Ask an IT admin. (request \`${idOf(r.json)}\`)`);
    });
    expect(leaked).toEqual([]);
    const echo = await h.slash("sizes", { user_id: "U0CAROL" });
    expect(text(echo.json)).toContain("VM sizes");
  });

  it("membership changes are picked up after a refresh", async () => {
    h.slack.usergroups = [
      { id: "S0OPS", users: ["U0ALICE", "U0CAROL"] },
      { id: "S0DEVS", users: ["U0BOB"] },
    ];
    await waitUntil("U0CAROL may power VMs", () => mayPower(h, "U0CAROL"));
    await waitUntil("U0BOB may no longer power VMs", async () => !(await mayPower(h, "U0BOB")));
    const r = await h.slash("power on web-02", { user_id: "U0CAROL" });
    expect(text(r.json)).toBe(`Powering on \`web-02\`… (request \`${idOf(r.json)}\`)`);
    const bob = await h.slash("power on web-02", { user_id: "U0BOB" });
    expect(text(bob.json)).toMatch(/^:warning: You are not allowed to run `power on`: it needs the operator or admin role, and you have viewer, builder\./);
  });

  it("a failing usergroups.list keeps the last membership read", async () => {
    const failedBefore = await refreshes(h, "failed");
    h.slack.usergroupsError = "internal_error";
    try {
      await waitUntil("a failed refresh", async () => (await refreshes(h, "failed")) >= failedBefore + 1);
      const r = await h.slash("power off web-03", { user_id: "U0CAROL" });
      expect(text(r.json)).toBe(`Powering off \`web-03\`… (request \`${idOf(r.json)}\`)`);
      expect(await mayPower(h, "U0BOB")).toBe(false);
    } finally {
      h.slack.usergroupsError = undefined;
    }
    const okBefore = await refreshes(h, "ok");
    await waitUntil("a good refresh again", async () => (await refreshes(h, "ok")) > okBefore);
  });

  it("Confirm publishes the command with the clicker's groups as they are at the click", async () => {
    h.slack.usergroups = [{ id: "S0OPS", users: ["U0ALICE", "U0DAVE"] }];
    await waitUntil("U0DAVE may power VMs", () => mayPower(h, "U0DAVE"));
    const clickConfirm = async (id: string, user: string) => {
      const responseUrl = h.slack.responseUrl();
      const body = blockActionsBody({ type: "block_actions", user: { id: user }, team: { id: "T0TEAM" }, response_url: responseUrl, actions: [{ type: "button", action_id: "iaas.confirm", value: id }] });
      expect((await postSigned(h.url, body, { secret: SECRET })).status).toBe(200);
      return waitUntil(`command ${id} published`, async () => (await h.commands()).find((c) => c.body.id === id));
    };

    const kept = await h.slash("power reset web-04", { user_id: "U0DAVE" });
    expect(text(kept.json)).toContain("Confirm or cancel");
    expect((await clickConfirm(idOf(kept.json), "U0DAVE")).body.actor).toMatchObject({ userId: "U0DAVE", groups: ["S0OPS"] });

    // Asked while a member, taken out of the group before the click: the command goes without the
    // group, and the power service (which re-checks the policy) refuses it.
    const asked = await h.slash("power reset web-05", { user_id: "U0DAVE" });
    expect(text(asked.json)).toContain("Confirm or cancel");
    h.slack.usergroups = [{ id: "S0OPS", users: ["U0ALICE"] }];
    await waitUntil("U0DAVE is out of @ops", async () => !(await mayPower(h, "U0DAVE")));
    const published = await clickConfirm(idOf(asked.json), "U0DAVE");
    expect(published.body.actor).toEqual({ userId: "U0DAVE", teamId: "T0TEAM", channelId: "C0OPS", via: "slack" });
  });
});

describe("gateway: group membership when it cannot or need not be read", () => {
  it("with a bot token membership is read even when the policy names no group (a VM's team may be any group); the actor carries none of those groups", async () => {
    const h = await startHarness({ SLACK_BOT_TOKEN: TOKEN, SLACK_USERGROUPS_REFRESH_S: "1" }, { slack: (s) => (s.usergroups = [{ id: "S0OPS", users: ["U0ALICE"] }]) });
    try {
      const r = await h.slash("power off web-01");
      expect(text(r.json)).toContain("Powering off");
      const cmd = (await h.commands()).find((c) => c.body.id === idOf(r.json));
      expect(cmd?.body.actor).toEqual({ userId: "U0ALICE", teamId: "T0TEAM", channelId: "C0OPS", via: "slack" });
      expect(h.slack.apiCalls("usergroups.list").length).toBeGreaterThanOrEqual(1);
    } finally {
      await h.close();
    }
  });

  it("without SLACK_BOT_TOKEN nothing is read and no group binding applies from Slack", async () => {
    const h = await startHarness({}, { policy: groupPolicy(), slack: (s) => (s.usergroups = [{ id: "S0OPS", users: ["U0ALICE", "U0BOB"] }]) });
    try {
      const r = await h.slash("power off web-01", { user_id: "U0BOB" });
      expect(text(r.json)).toMatch(/^:warning: You are not allowed to run `power off`/);
      expect(h.slack.apiCalls("usergroups.list")).toEqual([]);
    } finally {
      await h.close();
    }
  });

  it("fails closed while the first read fails: no group role until a read succeeds", async () => {
    const h = await startHarness(
      { SLACK_BOT_TOKEN: TOKEN, SLACK_USERGROUPS_REFRESH_S: "1" },
      {
        policy: groupPolicy(),
        slack: (s) => {
          s.usergroups = [{ id: "S0OPS", users: ["U0ALICE", "U0BOB"] }];
          s.usergroupsError = "ratelimited";
        },
      },
    );
    try {
      expect(h.slack.apiCalls("usergroups.list").length).toBeGreaterThanOrEqual(1);
      const r = await h.slash("power off web-01", { user_id: "U0BOB" });
      expect(text(r.json)).toMatch(/^:warning: You are not allowed to run `power off`: it needs the operator or admin role, and you have viewer\./);
      h.slack.usergroupsError = undefined;
      await waitUntil("U0BOB may power VMs", () => mayPower(h, "U0BOB"));
    } finally {
      await h.close();
    }
  });
});

/** UserGroups on the gateway's own Slack client (the bot token, SLACK_API_URL → the stand-in), with its log read back. */
describe("UserGroups: what it logs", () => {
  let slack: SlackStandIn;
  beforeAll(async () => {
    slack = await SlackStandIn.start();
  });
  afterAll(async () => {
    await slack?.close();
  });

  function setup(env: Record<string, string> = {}) {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString("utf8").split("\n").filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const log = createLogger("gateway-test", "debug", sink);
    const config = loadConfig(GatewayEnvSchema, { SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: slack.apiUrl, ...env });
    const transport = createSlackTransport(config, log, async () => undefined, async () => undefined);
    const groups = new UserGroups({ list: transport.listUserGroups, policy: groupPolicy(), log, metrics: gatewayMetrics(createMetrics("gateway")), refreshMs: 3_600_000 });
    const warnings = () => lines.filter((l) => l.level === "warn").map((l) => String(l.msg));
    return { groups, lines, warnings };
  }

  it("says once that nothing applies until a read succeeds, keeps the last good map after, and never logs the token", async () => {
    const { groups, lines, warnings } = setup({ SLACK_BOT_TOKEN: TOKEN });
    slack.usergroups = [{ id: "S0OPS", users: ["U0BOB"] }];
    slack.usergroupsError = "invalid_auth";
    try {
      expect(await groups.refresh()).toBe(false);
      expect(await groups.refresh()).toBe(false);
      expect(groups.groupsOf("U0BOB")).toBeUndefined();
      expect(warnings()).toEqual([
        "could not read Slack user group membership: until a refresh succeeds, no group binding applies to commands from Slack",
        "could not read Slack user group membership (still none known)",
      ]);
      expect(lines.at(-1)).toMatchObject({ reason: "Slack answered invalid_auth", failures: 2 });
      slack.usergroupsError = undefined;
      expect(await groups.refresh()).toBe(true);
      expect(groups.groupsOf("U0BOB")).toEqual(["S0OPS"]);
      // S0DEVS is in the policy but not in Slack: it binds nobody, said once.
      expect(warnings().at(-1)).toBe("the policy names user groups that Slack does not list as enabled; their bindings match nobody");
      slack.usergroupsError = "fatal_error";
      expect(await groups.refresh()).toBe(false);
      expect(groups.groupsOf("U0BOB")).toEqual(["S0OPS"]);
      expect(warnings().at(-1)).toBe("could not refresh Slack user group membership; keeping the last one read");
    } finally {
      slack.usergroupsError = undefined;
      groups.stop();
    }
    expect(JSON.stringify(lines)).not.toContain(TOKEN);
  });

  it("a Web API that cannot be reached is a warning with no token in it", async () => {
    const gone = await SlackStandIn.start();
    const apiUrl = gone.apiUrl;
    await gone.close();
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString("utf8"));
        done();
      },
    });
    const log = createLogger("gateway-test", "debug", sink);
    const config = loadConfig(GatewayEnvSchema, { SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: apiUrl, SLACK_BOT_TOKEN: TOKEN });
    const transport = createSlackTransport(config, log, async () => undefined, async () => undefined);
    const groups = new UserGroups({ list: transport.listUserGroups, policy: groupPolicy(), log, metrics: gatewayMetrics(createMetrics("gateway")), refreshMs: 3_600_000, timeoutMs: 20_000 });
    expect(await groups.refresh()).toBe(false);
    expect(lines.join("")).toContain("could not read Slack user group membership");
    expect(lines.join("")).not.toContain(TOKEN);
  }, 30_000);

  it("without a bot token, a policy with group bindings gets one warning at start and no call", async () => {
    const before = slack.apiCalls("usergroups.list").length;
    const { groups, warnings } = setup();
    await groups.start();
    groups.stop();
    expect(warnings()).toEqual([
      "the policy binds roles to Slack user groups, but without SLACK_BOT_TOKEN the gateway cannot look up who is in them: group bindings do not apply to commands from Slack",
    ]);
    expect(slack.apiCalls("usergroups.list").length).toBe(before);
  });
});
