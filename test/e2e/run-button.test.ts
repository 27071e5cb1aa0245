import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSystem, type System } from "./harness.js";
import { buttonsOf, click, inventory, postsMatching } from "./helpers.js";

/**
 * A button that runs an `/iaas` command (action id `iaas.run`, as lease reminders, `info` answers
 * and the App Home carry) runs it as the person who clicks, through the slash-command path: the
 * same policy, scope and confirmation as typing it. The button carries only the command text.
 */
describe("run buttons: a click is the clicker's own command", () => {
  let sys: System;
  beforeAll(async () => {
    sys = await startSystem({ admins: "UADMIN1" });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const first = async (responseUrl: string) => (await postsMatching(sys, responseUrl, () => true))[0]!.body as { text?: string; blocks?: unknown[]; replace_original?: boolean };

  it("answers the admin's click with the command's answer, as a new message", async () => {
    const r = await click(sys, { userId: "UADMIN1", action: "iaas.run", value: "info DC0_H0_VM0" });
    expect(r.status).toBe(200);
    const m = await first(r.responseUrl);
    expect(m.replace_original).toBe(false);
    expect(JSON.stringify(m)).toContain("DC0_H0_VM0");
    expect(JSON.stringify(m)).toContain("DC0_H0");
  });

  it("refuses a user's click on a VM their grant does not reach, and nothing changes", async () => {
    const r = await click(sys, { userId: "UBOB", action: "iaas.run", value: "power off DC0_H0_VM0" });
    expect(r.status).toBe(200);
    expect((await first(r.responseUrl)).text).toMatch(/no owner in IaaS, so only IT admins may power it off/);
    expect((await inventory(sys)).get("DC0_H0_VM0")?.powerState).toBe("poweredOn");
  });

  it("asks for confirmation where the typed command would", async () => {
    const r = await click(sys, { userId: "UADMIN1", action: "iaas.run", value: "delete DC0_H0_VM1" });
    expect(buttonsOf(await first(r.responseUrl)).map((b) => b.actionId)).toEqual(["iaas.confirm", "iaas.cancel"]);
    expect((await inventory(sys)).has("DC0_H0_VM1")).toBe(true);
  });
});
