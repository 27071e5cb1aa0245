import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHarness, testPolicy, type Harness } from "./harness.js";

/**
 * What the gateway itself decides about ownership, before vCenter is asked: the commands `owner`
 * and `team=` publish, a team the policy does not know, `list all` without `list:any`, and the
 * scope `help` shows. There is no vcenter-proxy here: a VM look-up finds no responder, so the
 * command goes on to the command service as it would with vCenter too slow to answer.
 * (Refusals after the look-up: test/e2e/ownership.test.ts.)
 */
const text = (json: unknown) => String((json as { text?: string }).text ?? "");
const idOf = (json: unknown) => {
  const m = /\(request `(r-[a-z2-7]+)`\)/.exec(text(json));
  if (!m?.[1]) throw new Error(`no request id in ${text(json)}`);
  return m[1];
};

describe("gateway: owner, team= and list all", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(
      { SLACK_BOT_TOKEN: "xoxb-fake-own", SLACK_USERGROUPS_REFRESH_S: "60" },
      {
        // No quota limits: a create takes no reservation, so no vCenter is asked (there is none here).
        policy: testPolicy({ teams: { ops: { users: ["U0DAVE"] } }, confirm: [], quotas: { perUser: {}, perTeam: {} } }, "U0ADMIN"),
        slack: (s) => (s.usergroups = [{ id: "S0PLAT", users: ["U0ALICE"] }]),
      },
    );
  });
  afterAll(async () => {
    await h?.close();
  });

  const published = async (r: { json: unknown }) => (await h.commands()).find((c) => c.body.id === idOf(r.json))?.body;

  it("owner with a user mention publishes the new owner; with a group or a policy team, the new team", async () => {
    const user = await h.slash("owner web-01 <@U0BOB|bob>", { user_id: "U0ADMIN" });
    expect(text(user.json)).toBe(`Giving \`web-01\` to <@U0BOB>… (request \`${idOf(user.json)}\`)`);
    expect(await published(user)).toMatchObject({ area: "vm", action: "owner", vm: "web-01", owner: "U0BOB", actor: { userId: "U0ADMIN", via: "slack" } });
    const group = await h.slash("owner web-01 <!subteam^S0PLAT|@platform>", { user_id: "U0ADMIN" });
    expect(text(group.json)).toBe(`Giving \`web-01\` to <!subteam^S0PLAT>… (request \`${idOf(group.json)}\`)`);
    expect(await published(group)).toMatchObject({ action: "owner", vm: "web-01", team: "S0PLAT" });
    expect((await published(group))?.owner).toBeUndefined();
    const team = await h.slash("owner web-01 ops", { user_id: "U0ADMIN" });
    expect(await published(team)).toMatchObject({ action: "owner", vm: "web-01", team: "ops" });
  });

  it("create, clone and deploy carry team=, and the actor carries the team's user group (the policy names none)", async () => {
    const create = await h.slash("create web-09 team=<!subteam^S0PLAT|@platform>");
    expect(text(create.json)).toBe(`Creating \`web-09\` for <!subteam^S0PLAT>… (request \`${idOf(create.json)}\`)`);
    expect(await published(create)).toMatchObject({ action: "create", name: "web-09", team: "S0PLAT", actor: { userId: "U0ALICE", groups: ["S0PLAT"] } });
    const clone = await h.slash("clone web-01 web-10 team=ops", { user_id: "U0DAVE" });
    expect(await published(clone)).toMatchObject({ action: "clone", source: "web-01", name: "web-10", team: "ops" });
    const deploy = await h.slash("deploy tmpl app-01 small team=@ops", { user_id: "U0DAVE" });
    expect(await published(deploy)).toMatchObject({ action: "deploy", template: "tmpl", name: "app-01", size: "small", team: "ops" });
    // An admin may give a new VM to any team.
    const admin = await h.slash("create web-13 team=ops", { user_id: "U0ADMIN" });
    expect(await published(admin)).toMatchObject({ action: "create", team: "ops" });
  });

  it("team= of a team the caller is not in: refused in the ack, nothing published", async () => {
    const leaked = await h.publishedBy(async () => {
      const group = await h.slash("create web-14 team=<!subteam^S0PLAT|@platform>", { user_id: "U0BOB" });
      expect(text(group.json)).toBe(`:warning: \`team=S0PLAT\`: you are not in <!subteam^S0PLAT>, so you cannot give it a VM. Ask an IT admin. (request \`${idOf(group.json)}\`)`);
      const named = await h.slash("clone web-01 web-15 team=ops");
      expect(text(named.json)).toMatch(/^:warning: `team=ops`: you are not in team `ops`, so you cannot give it a VM\./);
    });
    expect(leaked).toEqual([]);
  });

  it("a team the policy does not know, or a person as a team: refused in the ack, nothing published", async () => {
    const leaked = await h.publishedBy(async () => {
      const unknown = await h.slash("create web-11 team=nosuch");
      expect(text(unknown.json)).toBe(`:warning: There is no team \`nosuch\`: mention a Slack user group (\`@platform\`) or name a team of the policy: \`ops\`. (request \`${idOf(unknown.json)}\`)`);
      const owner = await h.slash("owner web-01 nosuch", { user_id: "U0ADMIN" });
      expect(text(owner.json)).toMatch(/^:warning: There is no team `nosuch`/);
      const person = await h.slash("clone web-01 web-12 team=<@U0BOB|bob>");
      expect(text(person.json)).toMatch(/^:warning: `team=` takes a team, and `&lt;@U0BOB\|bob&gt;` is a person/);
      const protectedVm = await h.slash("owner prod-db <@U0BOB|bob>", { user_id: "U0ADMIN" });
      expect(text(protectedVm.json)).toMatch(/^:warning: `prod-db` is protected by policy \(its name matches `prod-\*`\): it cannot be given another owner from Slack\./);
    });
    expect(leaked).toEqual([]);
  });

  it("list all without list:any is refused, saying what plain list shows", async () => {
    const r = await h.slash("list all");
    expect(text(r.json)).toBe(`:warning: You may not list every VM (\`list all\` needs \`list:any\`, which IT admins have); \`/iaas list\` shows your and your team's VMs. (request \`${idOf(r.json)}\`)`);
  });

  it("help shows how far each command reaches: own and team VMs for builders, any VM for admins", async () => {
    const user = text((await h.slash("help")).json);
    expect(user).toContain("`/iaas power on|off|reset|suspend|shutdown|reboot &lt;vm&gt;`: Power a VM on or off, reset or suspend it, or shut down or reboot its guest OS (needs VMware Tools). _(your and your team's VMs)_");
    expect(user).toContain("_(VMs you own)_");
    const admin = text((await h.slash("help", { user_id: "U0ADMIN" })).json);
    expect(admin).toContain("(needs VMware Tools). _(any VM)_");
    expect(admin).toContain("_(any VM, with `all`)_");
    expect(admin).not.toContain("your team's VMs");
  });
});
