import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSystem, type System } from "./harness.js";
import { buttonsOf, click, fingerprint, finalPost, idOf, inventory, postsMatching, rawClone, textOf } from "./helpers.js";

/**
 * Every /iaas command against the simulator, as a user sees it: signed Slack requests in, the
 * ack and the response_url posts out, and vCenter read back over SOAP to check what happened.
 * Default policy (deploy/policy.example.yaml) but for the rate limit, which one user's many
 * commands here would hit (policy.test.ts tests it); UADMIN1 is an admin, U0001 (the stand-in's
 * default user) and U0002 are not.
 */
function defaultPolicyWithoutRateLimit(): string {
  const yaml = readFileSync(new URL("../../deploy/policy.example.yaml", import.meta.url), "utf8");
  const out = yaml.replace(/perUserPerMinute: \d+/, "perUserPerMinute: 10000");
  if (out === yaml) throw new Error("deploy/policy.example.yaml has no rateLimit.perUserPerMinute to raise");
  return out;
}
describe("/iaas commands, end to end", () => {
  let sys: System;
  let offsetMs = 0;
  beforeAll(async () => {
    sys = await startSystem({ now: () => Date.now() + offsetMs, policyYaml: defaultPolicyWithoutRateLimit() });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const blocksOf = (json: unknown) => JSON.stringify((json as { blocks?: unknown }).blocks ?? []);

  describe("queries answer in the ack, with Block Kit fields and a text fallback", () => {
    it("help lists only what the caller may run", async () => {
      const user = await sys.slash("help");
      expect(user.status).toBe(200);
      const text = textOf(user.json);
      for (const verb of ["list", "info", "templates", "sizes", "create", "clone", "deploy", "power", "resize", "delete"]) expect(text).toContain(`/iaas ${verb}`);
      expect(text).not.toContain("/iaas echo");
      expect(text).not.toContain("/iaas audit");
      expect(blocksOf(user.json)).toContain('"fields"');
      const admin = await sys.slash("help", { user_id: "UADMIN1" });
      expect(textOf(admin.json)).toContain("/iaas echo");
      expect(textOf(admin.json)).toContain("/iaas audit");
    });

    it("sizes shows the policy's sizes and limits", async () => {
      const r = await sys.slash("sizes");
      expect(textOf(r.json)).toMatchInlineSnapshot(`
        "VM sizes (default small):
        small: 1 vCPU, 2 GB memory, 16 GB disk
        medium: 2 vCPU, 4 GB memory, 40 GB disk
        large: 4 vCPU, 8 GB memory, 80 GB disk
        xlarge: 8 vCPU, 32 GB memory, 200 GB disk
        Limits: at most 8 vCPU, 32 GB memory, 200 GB disk per VM."
      `);
      expect(blocksOf(r.json)).toContain("small (default)");
    });

    it("templates lists the simulator's template", async () => {
      const r = await sys.slash("templates");
      expect(textOf(r.json)).toContain("tmpl-ubuntu-22.04");
      expect(blocksOf(r.json)).toContain("tmpl-ubuntu-22.04");
    });

    it("list all (an admin) shows VMs with power, CPU and memory; a pattern narrows it", async () => {
      const all = await sys.slash("list all", { user_id: "UADMIN1" });
      const text = textOf(all.json);
      expect(text).toContain("DC0_H0_VM0: powered on");
      expect(text).not.toContain("tmpl-ubuntu-22.04");
      const some = await sys.slash("list all DC0_H0_*", { user_id: "UADMIN1" });
      expect(textOf(some.json).split("\n")[0]).toBe("2 VMs matching `DC0_H0_*`:");
      const none = await sys.slash("list all nothing-like-this*", { user_id: "UADMIN1" });
      expect(textOf(none.json)).toBe("No VMs matching `nothing-like-this*`.");
    });

    it("info shows power, CPU, memory, disks, host, guest, IP, tools, owner and hot-add", async () => {
      const r = await sys.slash("info DC0_H0_VM0", { user_id: "UADMIN1" });
      const blocks = blocksOf(r.json);
      for (const label of ["Power", "CPU", "Memory", "Disks", "Datastores", "Host", "Guest OS", "IP address", "VMware Tools", "Owner"]) expect(blocks).toContain(`*${label}*`);
      expect(blocks).toContain("hot-add");
      expect(blocks).toContain("10.0.0.");
      expect(textOf(r.json)).toMatch(/^DC0_H0_VM0: powered on, \d+ vCPU/);
    });

    it("info of a VM that does not exist, or of a wildcard, is a specific error with the request id", async () => {
      const missing = await sys.slash("info no-such-vm");
      expect(textOf(missing.json)).toMatch(/^:warning: No VM named `no-such-vm`\. .*\(request `r-[a-z2-7]{24}`\)$/);
      const wildcard = await sys.slash("info DC0_*");
      expect(textOf(wildcard.json)).toMatch(/^:warning: `DC0_\*` is not a valid VM name .*\(request `r-[a-z2-7]{24}`\)\nUsage: `\/iaas info &lt;vm&gt;`$/);
    });
  });

  describe("create, clone, deploy, resize", () => {
    it("create makes one VM of the default size, owned by the requester; progress then the result", async () => {
      const r = await sys.slash("create web-01");
      expect(textOf(r.json)).toMatch(/^Creating `web-01`… \(request `r-[a-z2-7]{24}`\)$/);
      const result = await finalPost(sys, r.responseUrl);
      expect(result).toContain(":white_check_mark: Created `web-01` (small: 1 vCPU, 2 GB memory, 16 GB disk), powered off.");
      expect(result).toContain(`(request \`${idOf(r.json)}\`)`);
      expect(sys.slack.postsTo(r.responseUrl).map((c) => textOf(c.body))[0]).toMatch(/^:hourglass_flowing_sand: Creating `web-01`/);
      const vm = (await inventory(sys)).get("web-01");
      expect(vm).toMatchObject({ cpu: 1, memoryMB: 2048, powerState: "poweredOff", count: 1 });
      const info = await sys.slash("info web-01");
      expect(blocksOf(info.json)).toContain("<@U0001>");
    });

    it("a Slack retry of create (same trigger_id, X-Slack-Retry-Num) makes one VM", async () => {
      const trigger = `${Date.now()}.9.retry-create`;
      const first = await sys.slash("create retry-01 medium", { trigger_id: trigger });
      const retry = await sys.slash("create retry-01 medium", { trigger_id: trigger, headers: { "x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout" } });
      expect(idOf(retry.json)).toBe(idOf(first.json));
      expect(await finalPost(sys, first.responseUrl)).toContain("Created `retry-01` (medium");
      expect((await inventory(sys)).get("retry-01")).toMatchObject({ count: 1, cpu: 2, memoryMB: 4096 });
    });

    it("clone copies a VM under a new name, owned by the requester", async () => {
      const r = await sys.slash("clone web-01 web-02");
      expect(textOf(r.json)).toMatch(/^Cloning `web-01` to `web-02`…/);
      expect(await finalPost(sys, r.responseUrl)).toContain(":white_check_mark: Cloned `web-01` to `web-02`");
      expect((await inventory(sys)).get("web-02")).toMatchObject({ count: 1, cpu: 1, memoryMB: 2048 });
    });

    it("deploy makes a VM from a template with a size", async () => {
      const r = await sys.slash("deploy tmpl-ubuntu-22.04 app-01 large");
      expect(await finalPost(sys, r.responseUrl)).toContain(":white_check_mark: Deployed `tmpl-ubuntu-22.04` as `app-01` (4 vCPU, 8 GB memory");
      expect((await inventory(sys)).get("app-01")).toMatchObject({ count: 1, cpu: 4, memoryMB: 8192 });
    });

    it("deploy of something that is not a template says so", async () => {
      const r = await sys.slash("deploy web-01 app-02");
      expect(await finalPost(sys, r.responseUrl)).toMatch(/^:x: .*`web-01` is a VM, not a template/);
      expect((await inventory(sys)).has("app-02")).toBe(false);
    });

    it("resize sets absolute targets on a powered-off VM; the same resize again changes nothing", async () => {
      const r = await sys.slash("resize web-01 cpu=2 memory=4");
      expect(textOf(r.json)).toMatch(/^Resizing `web-01` to 2 vCPU, 4 GB memory…/);
      expect(await finalPost(sys, r.responseUrl)).toContain(":white_check_mark: Resized `web-01`: now 2 vCPU, 4 GB memory, powered off.");
      const again = await sys.slash("resize web-01 cpu=2 memory=4");
      expect(await finalPost(sys, again.responseUrl)).toContain("`web-01` already has 2 vCPU and 4 GB memory; nothing changed.");
      expect((await inventory(sys)).get("web-01")).toMatchObject({ cpu: 2, memoryMB: 4096 });
    });

    it("resize of a powered-on VM without hot-add is refused clearly, and nothing changes", async () => {
      const on = await sys.slash("power on web-02");
      expect(await finalPost(sys, on.responseUrl)).toContain("is powered on");
      const r = await sys.slash("resize web-02 cpu=2");
      const result = await finalPost(sys, r.responseUrl);
      expect(result).toMatch(/^:x: `\/iaas resize web-02 cpu=2` failed: `web-02` is powered on and CPU hot-add is off: power it off to change its vCPUs/);
      expect(result).toContain(`(request \`${idOf(r.json)}\`)`);
      expect((await inventory(sys)).get("web-02")).toMatchObject({ cpu: 1, powerState: "poweredOn" });
    });

    it("resize beyond the policy's limits is refused at once, naming the limit", async () => {
      const before = await fingerprint(sys);
      const r = await sys.slash("resize web-01 cpu=16");
      expect(textOf(r.json)).toMatch(/^:warning: `cpu=16` is more than the policy allows: at most 8 vCPU\. \(request `r-[a-z2-7]{24}`\)$/);
      const m = await sys.slash("resize web-01 memory=64");
      expect(textOf(m.json)).toContain("at most 32 GB");
      expect(await fingerprint(sys)).toBe(before);
    });
  });

  describe("delete asks Confirm / Cancel, and only the requester's click counts", () => {
    it("delete: another user's click does nothing; the requester's confirm deletes; a second click does nothing", async () => {
      const r = await sys.slash("delete web-02");
      expect(r.status).toBe(200);
      expect(textOf(r.json)).toMatch(/^Delete `web-02`\? This cannot be undone\. Confirm or cancel within 5 minutes\. \(request `r-[a-z2-7]{24}`\)$/);
      const id = idOf(r.json);
      const buttons = buttonsOf(r.json);
      expect(buttons).toEqual([
        { actionId: "iaas.confirm", value: id, style: "danger" },
        { actionId: "iaas.cancel", value: id },
      ]);
      expect(blocksOf(r.json)).toContain("powered on (it will be powered off first)");

      const other = await click(sys, { userId: "U0002", action: "confirm", value: id });
      expect(other.status).toBe(200);
      const [told] = await postsMatching(sys, other.responseUrl, () => true);
      expect(told!.body).toMatchObject({ replace_original: false, response_type: "ephemeral" });
      expect(textOf(told!.body)).toBe(`:no_entry: Only <@U0001> can confirm or cancel this. Nothing was done. (request \`${id}\`)`);
      expect((await inventory(sys)).has("web-02")).toBe(true);

      const mine = await click(sys, { userId: "U0001", action: "confirm", value: id });
      expect(mine.status).toBe(200);
      const [replaced] = await postsMatching(sys, mine.responseUrl, (t) => t.startsWith("Deleting"));
      expect(replaced!.body).toMatchObject({ replace_original: true });
      expect(textOf(replaced!.body)).toBe(`Deleting \`web-02\`… (request \`${id}\`)`);
      expect(await finalPost(sys, mine.responseUrl)).toContain(":white_check_mark: Deleted `web-02`.");
      expect((await inventory(sys)).has("web-02")).toBe(false);

      const postsBefore = sys.slack.calls.length;
      const again = await click(sys, { userId: "U0001", action: "confirm", value: id });
      expect(again.status).toBe(200);
      // A barrier: a later request's ack proves the click was handled before it.
      await sys.slash("sizes");
      expect(sys.slack.postsTo(again.responseUrl)).toEqual([]);
      expect(sys.slack.calls.length).toBe(postsBefore);
    });

    it("cancel replaces the prompt and deletes nothing", async () => {
      const r = await sys.slash("delete retry-01");
      const id = idOf(r.json);
      const c = await click(sys, { userId: "U0001", action: "cancel", value: id });
      const [replaced] = await postsMatching(sys, c.responseUrl, () => true);
      expect(replaced!.body).toMatchObject({ replace_original: true });
      expect(textOf(replaced!.body)).toBe(`:no_entry_sign: Cancelled; nothing was done. (request \`${id}\`)`);
      const late = await click(sys, { userId: "U0001", action: "confirm", value: id });
      await sys.slash("sizes");
      expect(sys.slack.postsTo(late.responseUrl)).toEqual([]);
      expect((await inventory(sys)).has("retry-01")).toBe(true);
    });

    it("a confirmation expires after the policy's confirmTtlSeconds", async () => {
      const r = await sys.slash("delete retry-01");
      const id = idOf(r.json);
      offsetMs += (sys.policy.confirmTtlSeconds + 1) * 1000;
      try {
        const c = await click(sys, { userId: "U0001", action: "confirm", value: id });
        const [replaced] = await postsMatching(sys, c.responseUrl, () => true);
        expect(replaced!.body).toMatchObject({ replace_original: true });
        expect(textOf(replaced!.body)).toBe(`:hourglass: This confirmation has expired; nothing was done. Run the command again. (request \`${id}\`)`);
      } finally {
        offsetMs = 0;
      }
      expect((await inventory(sys)).has("retry-01")).toBe(true);
    });

    it("a builder cannot delete someone else's VM, nor one with no recorded owner; an admin can", async () => {
      const other = await sys.slash("delete retry-01", { user_id: "U0002" });
      expect(textOf(other.json)).toMatch(/^:warning: `retry-01` belongs to <@U0001>; you may not delete it: ask them or an IT admin\. \(request `r-/);
      expect(buttonsOf(other.json)).toEqual([]);
      const unowned = await sys.slash("delete DC0_H0_VM1");
      expect(textOf(unowned.json)).toContain("`DC0_H0_VM1` has no owner in IaaS, so only IT admins may delete it until it is adopted");
      const admin = await sys.slash("delete retry-01", { user_id: "UADMIN1" });
      const id = idOf(admin.json);
      const c = await click(sys, { userId: "UADMIN1", action: "confirm", value: id });
      expect(await finalPost(sys, c.responseUrl)).toContain("Deleted `retry-01`.");
      expect((await inventory(sys)).has("retry-01")).toBe(false);
    });

    it("delete of a VM that does not exist says so at once", async () => {
      const r = await sys.slash("delete no-such-vm");
      expect(textOf(r.json)).toMatch(/^:warning: No VM named `no-such-vm`\./);
      expect(buttonsOf(r.json)).toEqual([]);
    });
  });

  describe("admin commands", () => {
    it("a non-admin cannot run echo or audit", async () => {
      const echo = await sys.slash("echo hello");
      expect(textOf(echo.json)).toMatch(/^:warning: You are not allowed to run `echo`: it needs the admin role, and you have viewer, operator, builder\. Ask an IT admin\. \(request `r-/);
      const audit = await sys.slash("audit");
      expect(textOf(audit.json)).toMatch(/^:warning: You are not allowed to run `audit`/);
    });

    it("echo shows the parsed command and the caller, never a secret", async () => {
      const r = await sys.slash("echo power off web-01", { user_id: "UADMIN1" });
      const all = JSON.stringify(r.json);
      expect(textOf(r.json)).toContain('parsed {"verb":"power","action":"off","vm":"web-01"}; user UADMIN1; team T0001; channel C0001; groups none; roles viewer, operator, builder, admin');
      expect(all).not.toContain("deprecated-verification-token");
      expect(all).not.toContain("e2e-signing-secret");
      expect(all).not.toContain("/response/");
    });

    it("audit shows who did what, when and with what result; for one VM too", async () => {
      const r = await sys.slash("audit", { user_id: "UADMIN1" });
      const text = textOf(r.json);
      expect(text).toMatch(/U0001 vm\.delete web-02: succeeded/);
      expect(text).toMatch(/U0001 vm\.delete retry-01: rejected \(IAAS_CONFIRMATION_EXPIRED\)/);
      expect(text).toMatch(/U0001 echo: rejected \(IAAS_NOT_ALLOWED\)/);
      expect(blocksOf(r.json)).toContain("*Who*");
      // For one VM: the records that name it, the create's included.
      const one = await sys.slash("audit web-01", { user_id: "UADMIN1" });
      const lines = textOf(one.json).split("\n").slice(1);
      expect(lines.some((l) => / U0001 vm\.create web-01: succeeded/.test(l))).toBe(true);
      expect(lines.some((l) => / U0001 vm\.resize web-01: succeeded/.test(l))).toBe(true);
      expect(lines.some((l) => /web-02|retry-01/.test(l))).toBe(false);
    });
  });

  it("a VM made outside the product has no owner: a builder may not clone it, an admin may (and owns the clone)", async () => {
    await rawClone(sys, "legacy-01");
    const refused = await sys.slash("clone legacy-01 legacy-refused");
    expect(textOf(refused.json)).toMatch(/^:warning: `legacy-01` has no owner in IaaS, so only IT admins may clone it until it is adopted/);
    const r = await sys.slash("clone legacy-01 legacy-copy", { user_id: "UADMIN1" });
    expect(await finalPost(sys, r.responseUrl)).toContain("Cloned `legacy-01` to `legacy-copy`");
  });
});
