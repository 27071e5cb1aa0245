import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitUntil } from "@iaas/testkit";
import { startSystem, type System } from "./harness.js";
import { buttonsOf, click, finalPost, idOf, inventory, textOf } from "./helpers.js";

/**
 * A role bound to a Slack user group, end to end: the gateway reads the group's members from
 * Slack (the stand-in's usergroups.list), the command carries the user's groups, and the power
 * service, which checks the policy again with the command's actor, acts or refuses.
 */
const POLICY = `
roles:
  viewer: [help, list, info, templates, sizes, echo]
  operator: ["power.*:any"]
  admin: ["*"]
bindings:
  - { role: viewer, everyone: true }
  - { role: operator, groups: [S0OPS] }
sizes:
  small: { cpu: 1, memoryGB: 2, diskGB: 16 }
defaultSize: small
limits: { maxCpu: 8, maxMemoryGB: 32, maxDiskGB: 200 }
confirm: [delete, "power.reset"]
rateLimit: { perUserPerMinute: 10000 }
`;

describe("policy bindings by Slack user group, from Slack to vCenter", () => {
  let sys: System;
  beforeAll(async () => {
    sys = await startSystem({
      policyYaml: POLICY,
      gatewayEnv: { SLACK_BOT_TOKEN: "xoxb-e2e-grp", SLACK_USERGROUPS_REFRESH_S: "1" },
      slack: (s) => (s.usergroups = [{ id: "S0OPS", users: ["U0OPS1", "U0OPS2"] }]),
    });
    // The group is also the VMs' team: operators act on VMs of their team (unowned VMs are admin-only).
    await sys.adopt(["DC0_H0_VM0", "DC0_H0_VM1"], "UOWNER1", "S0OPS");
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const mayPower = async (user: string) => textOf((await sys.slash("help", { user_id: user })).json).includes("/iaas power");

  it("a member of the group powers a VM off; a non-member is refused and nothing changes", async () => {
    const refused = await sys.slash("power off DC0_H0_VM1", { user_id: "U0OTHER" });
    expect(textOf(refused.json)).toBe(`:warning: You are not allowed to run \`power off\`: it needs the operator or admin role, and you have viewer. Ask an IT admin. (request \`${idOf(refused.json)}\`)`);

    const r = await sys.slash("power off DC0_H0_VM0", { user_id: "U0OPS1" });
    expect(textOf(r.json)).toBe(`Powering off \`DC0_H0_VM0\`… (request \`${idOf(r.json)}\`)`);
    expect(await finalPost(sys, r.responseUrl)).toMatch(/^:white_check_mark: `DC0_H0_VM0` is powered off/);
    const inv = await inventory(sys);
    expect(inv.get("DC0_H0_VM0")?.powerState).toBe("poweredOff");
    expect(inv.get("DC0_H0_VM1")?.powerState).toBe("poweredOn");
  });

  it("echo shows the groups the gateway resolved and the roles they give", async () => {
    expect(textOf((await sys.slash("echo power off x", { user_id: "U0OPS1" })).json)).toContain("; groups S0OPS; roles viewer, operator (request");
    expect(textOf((await sys.slash("echo power off x", { user_id: "U0OTHER" })).json)).toContain("; groups none; roles viewer (request");
  });

  it("taken out of the group between the question and the click: the confirmed command is refused by the power service", async () => {
    const asked = await sys.slash("power reset DC0_H0_VM1", { user_id: "U0OPS2" });
    const [confirm] = buttonsOf(asked.json);
    expect(confirm?.actionId).toBe("iaas.confirm");
    sys.slack.usergroups = [{ id: "S0OPS", users: ["U0OPS1"] }];
    await waitUntil("U0OPS2 is out of the group", async () => !(await mayPower("U0OPS2")));
    const c = await click(sys, { userId: "U0OPS2", action: "confirm", value: confirm!.value });
    expect(c.status).toBe(200);
    expect(await finalPost(sys, c.responseUrl)).toMatch(/^:x: .*You are not allowed to run `power reset`: it needs the operator or admin role, and you have viewer\./);
    expect((await inventory(sys)).get("DC0_H0_VM1")?.powerState).toBe("poweredOn");
  });
});
