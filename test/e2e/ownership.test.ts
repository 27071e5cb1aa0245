import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSystem, type System } from "./harness.js";
import { buttonsOf, click, fingerprint, finalPost, idOf, inventory, rawClone, textOf } from "./helpers.js";

/**
 * Whose VM is it, over signed HTTP: the default policy's scoped grants (viewer, operator and
 * builder reach their own and their team's VMs, admins any VM), a team that is a Slack user
 * group, and a VM nobody owns until an admin adopts it. Every refusal is in the HTTP ack body:
 * the gateway looks the VM up before it publishes anything, and nothing changes in vCenter.
 */
const POLICY = `
roles:
  viewer: [help, list, info, templates, sizes, quota]
  operator: ["power.*"]
  builder: [create, clone, deploy, resize, delete, owner]
  admin: ["*"]
bindings:
  - { role: viewer, everyone: true }
  - { role: operator, everyone: true }
  - { role: builder, everyone: true }
sizes:
  small: { cpu: 1, memoryGB: 2, diskGB: 16 }
defaultSize: small
limits: { maxCpu: 8, maxMemoryGB: 32, maxDiskGB: 200 }
teams:
  ops: { users: [UDAVE] }
confirm: [delete]
rateLimit: { perUserPerMinute: 10000 }
`;

describe("ownership and scope, from Slack", () => {
  let sys: System;
  beforeAll(async () => {
    sys = await startSystem({
      policyYaml: POLICY,
      admins: "UADMIN1",
      gatewayEnv: { SLACK_BOT_TOKEN: "xoxb-e2e-own", SLACK_USERGROUPS_REFRESH_S: "60" },
      slack: (s) => (s.usergroups = [{ id: "S0PLAT", users: ["UALICE", "UCAROL"] }]),
    });
    await rawClone(sys, "brown-01", { powerOn: true });
    await rawClone(sys, "twin");
    await rawClone(sys, "twin");
    const made = await sys.slash("create alice-01", { user_id: "UALICE" });
    expect(await finalPost(sys, made.responseUrl)).toContain("Created `alice-01`");
    const team = await sys.slash("create team-01 team=<!subteam^S0PLAT|@platform>", { user_id: "UALICE" });
    expect(await finalPost(sys, team.responseUrl)).toContain("Created `team-01`");
  }, 120_000);
  afterAll(async () => {
    await sys?.stop();
  });

  const ack = async (text: string, user: string) => {
    const r = await sys.slash(text, { user_id: user });
    expect(r.status).toBe(200);
    return { ...r, text: textOf(r.json) };
  };
  const refusedInAck = async (text: string, user: string, message: string) => {
    const before = await fingerprint(sys);
    const r = await ack(text, user);
    expect(r.text, text).toBe(`:warning: ${message} (request \`${idOf(r.json)}\`)`);
    expect(buttonsOf(r.json)).toEqual([]);
    expect(await fingerprint(sys)).toBe(before);
  };

  it("UBOB cannot power off, resize, delete or clone UALICE's VM: refused in the ack, saying whose it is", async () => {
    await refusedInAck("power off alice-01", "UBOB", "`alice-01` belongs to <@UALICE>; you may not power it off: ask them or an IT admin.");
    await refusedInAck("power reset alice-01", "UBOB", "`alice-01` belongs to <@UALICE>; you may not reset it: ask them or an IT admin.");
    await refusedInAck("resize alice-01 cpu=2", "UBOB", "`alice-01` belongs to <@UALICE>; you may not resize it: ask them or an IT admin.");
    await refusedInAck("delete alice-01", "UBOB", "`alice-01` belongs to <@UALICE>; you may not delete it: ask them or an IT admin.");
    await refusedInAck("clone alice-01 bobs-copy", "UBOB", "`alice-01` belongs to <@UALICE>; you may not clone it: ask them or an IT admin.");
    await refusedInAck("owner alice-01 <@UBOB|bob>", "UBOB", "`alice-01` belongs to <@UALICE>; you may not give it another owner: ask them or an IT admin.");
  });

  it("UBOB cannot see it either: info refuses, list leaves it out, list all is for admins", async () => {
    const info = await ack("info alice-01", "UBOB");
    expect(info.text).toBe(`:warning: \`alice-01\` belongs to <@UALICE>; you may not see it: ask them or an IT admin. (request \`${idOf(info.json)}\`)`);
    const list = await ack("list", "UBOB");
    expect(list.text).not.toContain("alice-01");
    expect(list.text).toBe("You and your teams have no VMs.");
    const all = await ack("list all", "UBOB");
    expect(all.text).toBe(`:warning: You may not list every VM (\`list all\` needs \`list:any\`, which IT admins have); \`/iaas list\` shows your and your team's VMs. (request \`${idOf(all.json)}\`)`);
  });

  it("UALICE sees and acts on her own VM", async () => {
    const list = await ack("list", "UALICE");
    expect(list.text).toContain("alice-01");
    expect(list.text).not.toContain("brown-01");
    expect(list.text).not.toContain("DC0_H0_VM0");
    const info = await ack("info alice-01", "UALICE");
    expect(info.text).toContain("owner <@UALICE>");
    const on = await ack("power on alice-01", "UALICE");
    expect(on.text).toBe(`Powering on \`alice-01\`… (request \`${idOf(on.json)}\`)`);
    expect(await finalPost(sys, on.responseUrl)).toMatch(/^:white_check_mark: `alice-01` is powered on/);
    expect((await inventory(sys)).get("alice-01")?.powerState).toBe("poweredOn");
  });

  it("an admin acts on any VM and lists every VM with list all", async () => {
    const off = await ack("power off alice-01", "UADMIN1");
    expect(off.text).toBe(`Powering off \`alice-01\`… (request \`${idOf(off.json)}\`)`);
    expect(await finalPost(sys, off.responseUrl)).toMatch(/^:white_check_mark: `alice-01` is powered off/);
    const all = await ack("list all", "UADMIN1");
    expect(all.text).toContain("alice-01");
    expect(all.text).toContain("brown-01");
    const help = await ack("help", "UADMIN1");
    expect(help.text).toContain("_(any VM)_");
  });

  it("a member of the VM's team (a Slack user group) acts on it; someone outside the team cannot", async () => {
    const info = await ack("info team-01", "UCAROL");
    expect(info.text).toContain("team-01");
    const on = await ack("power on team-01", "UCAROL");
    expect(on.text).toBe(`Powering on \`team-01\`… (request \`${idOf(on.json)}\`)`);
    expect(await finalPost(sys, on.responseUrl)).toMatch(/^:white_check_mark: `team-01` is powered on/);
    expect((await ack("list", "UCAROL")).text).toContain("team-01");
    await refusedInAck("power off team-01", "UBOB", "`team-01` belongs to <@UALICE> (<!subteam^S0PLAT>); you may not power it off: ask them or an IT admin.");
    // A team member may not give the VM away: only its owner or an admin.
    await refusedInAck("owner team-01 <@UCAROL|carol>", "UCAROL", "`team-01` belongs to <@UALICE> (<!subteam^S0PLAT>); you may not give it another owner: only its owner or an IT admin may give it away.");
  });

  it("an unowned VM is admin-only until an admin adopts it with owner", async () => {
    await refusedInAck(
      "power off brown-01",
      "UBOB",
      "`brown-01` has no owner in IaaS, so only IT admins may power it off until it is adopted (an admin runs `/iaas owner brown-01 @user`).",
    );
    const adopt = await ack("owner brown-01 <@UBOB|bob>", "UADMIN1");
    expect(adopt.text).toBe(`Giving \`brown-01\` to <@UBOB>… (request \`${idOf(adopt.json)}\`)`);
    expect(await finalPost(sys, adopt.responseUrl)).toMatch(/^:white_check_mark: /);
    const off = await ack("power off brown-01", "UBOB");
    expect(off.text).toBe(`Powering off \`brown-01\`… (request \`${idOf(off.json)}\`)`);
    expect(await finalPost(sys, off.responseUrl)).toMatch(/^:white_check_mark: `brown-01` is powered off/);
  });

  it("the owner hands a VM on to a policy team; a member of that team may then act on it", async () => {
    const give = await ack("owner alice-01 ops", "UALICE");
    expect(give.text).toBe(`Giving \`alice-01\` to team \`ops\`… (request \`${idOf(give.json)}\`)`);
    expect(await finalPost(sys, give.responseUrl)).toMatch(/^:white_check_mark: /);
    const on = await ack("power on alice-01", "UDAVE");
    expect(on.text).toBe(`Powering on \`alice-01\`… (request \`${idOf(on.json)}\`)`);
    expect(await finalPost(sys, on.responseUrl)).toMatch(/^:white_check_mark: `alice-01` is powered on/);
  });

  it("bad input: unknown VM, ambiguous name, unknown team, team= with a person, a template: each in the ack, nothing changes", async () => {
    await refusedInAck("power off no-such-vm", "UADMIN1", "No VM named `no-such-vm`. Names are exact and case-sensitive; see `/iaas list`.");
    await refusedInAck("power on twin", "UADMIN1", "2 VMs are named `twin`: `/DC0/vm/twin`, `/DC0/vm/twin`. Use the path.");
    await refusedInAck("resize twin cpu=2", "UADMIN1", "2 VMs are named `twin`: `/DC0/vm/twin`, `/DC0/vm/twin`. Use the path.");
    await refusedInAck("create new-01 team=nosuch", "UALICE", "There is no team `nosuch`: mention a Slack user group (`@platform`) or name a team of the policy: `ops`.");
    await refusedInAck("owner alice-01 nosuch", "UADMIN1", "There is no team `nosuch`: mention a Slack user group (`@platform`) or name a team of the policy: `ops`.");
    const person = await ack("create new-01 team=<@UBOB|bob>", "UALICE");
    expect(person.text).toMatch(/^:warning: `team=` takes a team, and `&lt;@UBOB\|bob&gt;` is a person/);
    await refusedInAck("owner tmpl-ubuntu-22.04 <@UBOB|bob>", "UADMIN1", "`tmpl-ubuntu-22.04` is a template: templates belong to IT and have no owner in IaaS; nothing changed.");
  });

  it("delete by the owner asks first, showing the owner; a click by someone else changes nothing", async () => {
    const asked = await ack("delete team-01", "UALICE");
    expect(asked.text).toMatch(/^Delete `team-01`\? This cannot be undone\./);
    expect(JSON.stringify(asked.json)).toContain("<@UALICE> · <!subteam^S0PLAT>");
    const [confirm] = buttonsOf(asked.json);
    const c = await click(sys, { userId: "UALICE", action: "confirm", value: confirm!.value });
    expect(await finalPost(sys, c.responseUrl)).toMatch(/^:white_check_mark: .*team-01/);
    expect((await inventory(sys)).has("team-01")).toBe(false);
  });
});
