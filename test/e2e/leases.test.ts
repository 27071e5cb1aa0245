import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProxyEndpoints, Streams } from "@iaas/contracts";
import { jetstreamFor, kvKeys, openBucket, requestJson } from "@iaas/runtime";
import { StepRecordSchema, stepKey } from "@iaas/lease-keeper";
import { VirtualMachine } from "@iaas/vsphere";
import { waitUntil, type RecordedCall } from "@iaas/testkit";
import { startSystem, type System } from "./harness.js";
import { buttonsOf, click, finalPost, idOf, inventory, rawClone, textOf, waitFor } from "./helpers.js";

const NOTIFY = "CNOTIFY1";

/**
 * The default policy with leases in seconds, so a lease's whole life (reminder, end, grace) fits
 * in a test: default 14s, max 40s, a reminder 10s before the end, a grace of 4s.
 */
function policyOfSeconds(): string {
  const yaml = readFileSync(new URL("../../deploy/policy.example.yaml", import.meta.url), "utf8");
  const out = yaml
    .replace(/perUserPerMinute: \d+/, "perUserPerMinute: 10000")
    .replace(/  default: 30d\n  max: 90d\n  grace: 7d\n  remindBefore: \[3d, 1d\]/, "  default: 14s\n  max: 40s\n  grace: 4s\n  remindBefore: [10s]");
  if (!out.includes("remindBefore: [10s]")) throw new Error("deploy/policy.example.yaml's leases are not the ones this test rewrites");
  return out;
}

describe("leases, end to end with a policy of seconds", () => {
  let sys: System;
  beforeAll(async () => {
    sys = await startSystem({ policyYaml: policyOfSeconds(), admins: "UADMIN1", gatewayEnv: { SLACK_BOT_TOKEN: "xoxb-e2e-lease", SLACK_NOTIFY_CHANNEL: NOTIFY }, leaseScanMs: 300 });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const vmGet = async (vm: string) => (await requestJson(sys.nc, ProxyEndpoints.vmGet, { vm }, { timeoutMs: 10_000 })).vm;
  /** The first chat.postMessage to `channel` whose text matches `re`. */
  const posted = (channel: string, re: RegExp) =>
    sys.slack.waitFor(() => sys.slack.apiCalls("chat.postMessage").find((c: RecordedCall) => c.body.channel === channel && re.test(String(c.body.text))), 60_000);
  const run = async (text: string, user: string) => {
    const r = await sys.slash(text, { user_id: user });
    return { ack: textOf(r.json), final: () => finalPost(sys, r.responseUrl) };
  };

  it("refuses bad lease durations with a clear message", async () => {
    for (const [opt, why] of [
      ["lease=0d", /no time at all/],
      ["lease=-3d", /not a duration/],
      ["lease=999999d", /more than 10 years/],
      ["lease=7x", /not a duration/],
    ] as const) {
      const r = await run(`create lease-bad small ${opt}`, "UALICE");
      expect(r.ack, opt).toMatch(why);
    }
    expect((await inventory(sys)).has("lease-bad")).toBe(false);
  });

  it("gives a new VM its lease attribute, reminds its owner with Extend, and Extend moves the end", async () => {
    const made = await run("create lease-a small", "UALICE");
    expect(await made.final()).toMatch(/Its lease ends/);
    const vm = await vmGet("lease-a");
    expect(vm.leaseExpires).toBeDefined();
    const first = Date.parse(vm.leaseExpires!);

    const reminder = await posted("UALICE", /lease of `?lease-a`? ends in/);
    const buttons = buttonsOf({ blocks: JSON.parse(String(reminder.body.blocks)) });
    expect(buttons.map((b) => b.value)).toEqual(["extend lease-a", "delete lease-a"]);

    const r = await click(sys, { userId: "UALICE", action: "iaas.run", value: buttons[0]!.value, channelId: "DALICE1" });
    await finalPost(sys, r.responseUrl);
    const after = Date.parse((await vmGet("lease-a")).leaseExpires!);
    expect(after).toBeGreaterThan(first);
  });

  it("does not extend someone else's VM, nor past max without an approval", async () => {
    const bob = await run("extend lease-a", "UBOB");
    expect(/belongs to <@UALICE>/.test(bob.ack) ? bob.ack : await bob.final()).toMatch(/belongs to <@UALICE>/);
    const long = await run("extend lease-a 60s", "UALICE");
    // Past the max it goes to approval (the default rule long-leases): the ack says it waits.
    expect(/approv/i.test(long.ack) ? long.ack : await long.final()).toMatch(/approv/i);
  });

  it("powers the VM off at the end of its lease and deletes it after the grace", async () => {
    const made = await run("create lease-b small lease=3s", "UALICE");
    await made.final();
    await sys.slack.waitFor(() => sys.slack.apiCalls("chat.postMessage").find((c) => c.body.channel === "UALICE" && /lease of `?lease-b`? ended/.test(String(c.body.text))), 60_000);
    const off = await vmGet("lease-b").catch(() => undefined);
    // Either still there and off, or already deleted after the grace: never on.
    if (off) expect(off.powerState).toBe("poweredOff");
    await posted("UALICE", /`?lease-b`? was deleted/);
    expect((await inventory(sys)).has("lease-b")).toBe(false);
    // The keeper's metrics: the steps done, rounds that listed the VMs, no lease left past its end undone.
    const reg = sys.metrics["lease-keeper"].registry;
    const value = async (name: string, labels: Record<string, string> = {}) =>
      (await reg.getSingleMetric(name)!.get()).values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((a, v) => a + v.value, 0);
    // Powered off at the end, or found off already (a new VM may not have been powered on).
    expect((await value("iaas_lease_steps_total", { step: "expire", outcome: "powered-off" })) + (await value("iaas_lease_steps_total", { step: "expire", outcome: "already-off" }))).toBeGreaterThanOrEqual(1);
    expect(await value("iaas_lease_steps_total", { outcome: "failed" })).toBe(0);
    expect(await value("iaas_lease_steps_total", { step: "grace", outcome: "deleted" })).toBeGreaterThanOrEqual(1);
    expect(await value("iaas_lease_rounds_total", { outcome: "ok" })).toBeGreaterThanOrEqual(1);
    await waitUntil("no lease past its end undone", async () => (await value("iaas_lease_overdue_vms")) === 0 && (await value("iaas_lease_rounds_total", { outcome: "ok" })) > 0);
  });

  /** The lease-keeper's counter `name` summed over the series with `labels`. */
  const keeperValue = async (name: string, labels: Record<string, string> = {}) =>
    (await sys.metrics["lease-keeper"].registry.getSingleMetric(name)!.get()).values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((a, v) => a + v.value, 0);
  /** Resolves once `n` more keeper rounds have ended (a round counts when it is over). */
  const roundsPass = async (n: number) => {
    const from = await keeperValue("iaas_lease_rounds_total");
    await waitUntil(`${n} more lease rounds`, async () => (await keeperValue("iaas_lease_rounds_total")) >= from + n);
  };
  /** The lease audit records in IAAS_AUDIT whose id is `key`. */
  const leaseAudits = async (key: string) => {
    const { jsm } = await jetstreamFor(sys.nc);
    const info = await jsm.streams.info(Streams.audit.name);
    const out: Record<string, unknown>[] = [];
    for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
      const r = (await jsm.streams.getMessage(Streams.audit.name, { seq }).catch(() => null))?.json<Record<string, unknown>>();
      if (r?.kind === "lease" && r.id === key) out.push(r);
    }
    return out;
  };
  /** What a keeper writes before a lease-end delete (`deletes-in-flight.<step key>`), for a VM of UALICE's. */
  const marker = (vm: string, moref: string, expires: number) => ({
    vm: { name: vm, path: `/DC0/vm/${vm}`, moref, owner: "UALICE" },
    expires: new Date(expires).toISOString(),
    to: "UALICE",
    text: `\`${vm}\` was deleted: its lease ended at ${new Date(expires).toISOString()} and the grace of 4s is over.`,
    message: "deleted 4s after the end of its lease",
    by: "keeper-killed",
    at: new Date().toISOString(),
  });
  /** The step's claim of a keeper that died holding it (older than claimStaleMs). */
  const deadClaim = () => JSON.stringify({ state: "claimed", at: new Date(Date.now() - 60 * 60_000).toISOString(), by: "keeper-killed" });

  it("a keeper killed between the delete and its notice: the next round tells the owner and audits it, once", async () => {
    const leases = await openBucket(sys.nc, "leases");
    const ref = await rawClone(sys, "lease-d");
    const expires = Date.now() - 10_000;
    const key = stepKey(ref.value, expires, "grace");
    // What the killed keeper left: the VM deleted (its delete went through), its claim and the marker written before it.
    await (await new VirtualMachine(sys.observer, ref).destroy()).wait({ timeoutMs: 30_000 });
    await leases.put(key, deadClaim());
    await leases.put(`deletes-in-flight.${key}`, JSON.stringify(marker("lease-d", ref.value, expires)));

    const told = await posted("UALICE", /`lease-d` was deleted/);
    expect(String(told.body.text)).toMatch(/grace of 4s is over/);
    await waitUntil("the marker removed", async () => !(await kvKeys(leases, "deletes-in-flight.>")).includes(`deletes-in-flight.${key}`));
    expect(StepRecordSchema.parse((await leases.get(key))!.json())).toMatchObject({ state: "done", outcome: "deleted" });
    // Rounds after it send nothing more.
    await roundsPass(3);
    expect(sys.slack.apiCalls("chat.postMessage").filter((c) => c.body.channel === "UALICE" && /`lease-d` was deleted/.test(String(c.body.text)))).toHaveLength(1);
    const audits = await leaseAudits(key);
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ step: "deleted", vm: "lease-d", moref: ref.value, owner: "UALICE", message: "deleted 4s after the end of its lease" });
  });

  it("a keeper killed before its delete reached vCenter: the marker is cleared, the VM kept, nobody told of a delete", async () => {
    const leases = await openBucket(sys.nc, "leases");
    const ref = await rawClone(sys, "lease-e");
    const key = stepKey(ref.value, Date.now() - 10_000, "grace");
    await leases.put(key, deadClaim());
    await leases.put(`deletes-in-flight.${key}`, JSON.stringify(marker("lease-e", ref.value, Date.now() - 10_000)));
    await waitUntil("the marker removed", async () => !(await kvKeys(leases, "deletes-in-flight.>")).includes(`deletes-in-flight.${key}`));
    // The step given back, to be decided again on the VM as it is (this one has no lease: nothing is due).
    const step = await leases.get(key);
    expect(step === null || step.operation !== "PUT").toBe(true);
    await roundsPass(2);
    expect((await inventory(sys)).has("lease-e")).toBe(true);
    expect(sys.slack.apiCalls("chat.postMessage").filter((c) => /lease-e/.test(String(c.body.text)))).toHaveLength(0);
    expect(await leaseAudits(key)).toHaveLength(0);
    // Every delete so far, lease-b's included, saw its marker through.
    expect(await kvKeys(leases, "deletes-in-flight.>")).toEqual([]);
  });

  it("a garbage lease attribute: no action, IT told once", async () => {
    const made = await run("create lease-c small", "UALICE");
    await made.final();
    const c = sys.observer;
    const ref = await c.searchIndex.findByInventoryPath("/DC0/vm/lease-c");
    const field = await c.customFieldsManager.ensure("iaas.lease.expires", "VirtualMachine");
    await c.customFieldsManager.setField(ref!, field.key, "next tuesday");
    const told = await posted(NOTIFY, /lease of `?lease-c`? cannot be read/);
    expect(String(told.body.text)).toMatch(/nothing is done to it/);
    expect((await vmGet("lease-c")).leaseInvalid).toBe("next tuesday");
    const bad = await run("extend lease-c", "UALICE");
    expect(await bad.final()).toMatch(/no lease that can be read/);
    expect((await inventory(sys)).has("lease-c")).toBe(true);
    expect(sys.slack.apiCalls("chat.postMessage").filter((x) => x.body.channel === NOTIFY && /lease-c/.test(String(x.body.text)))).toHaveLength(1);
  });

  it("lease <vm> set <duration|date> and none: the owner within the max (as extend), an admin anything, none for admins only; audited", async () => {
    await (await run("create lease-f small lease=40s", "UALICE")).final();
    const endOf = async () => (await vmGet("lease-f")).leaseExpires;
    const near = (iso: string | undefined, ms: number) => Math.abs(Date.parse(iso!) - (Date.now() + ms)) < 20_000;
    // The owner: within the max it is an extend to that length.
    const mine = await run("lease lease-f set 30s", "UALICE");
    expect(mine.ack).toMatch(/Setting the lease of `lease-f` to 30 seconds? from now/);
    expect(await mine.final()).toMatch(/The lease of `lease-f` now ends/);
    expect(near(await endOf(), 30_000)).toBe(true);
    // Past the max it waits for an approval, as `extend` does; removing it, or someone else's VM: refused.
    const long = await run("lease lease-f set 2d", "UALICE");
    expect(long.ack).toMatch(/needs an approval/);
    expect(near(await endOf(), 30_000)).toBe(true);
    expect((await run("lease lease-f none", "UALICE")).ack).toMatch(/lease set/);
    const bob = await run("lease lease-f set 30s", "UBOB");
    expect(/belongs to <@UALICE>/.test(bob.ack) ? bob.ack : await bob.final()).toMatch(/belongs to <@UALICE>/);
    expect((await run("lease lease-f set 2020-01-01", "UADMIN1")).ack).toMatch(/not in the future/);
    expect(near(await endOf(), 30_000)).toBe(true);

    // An admin's yes runs it: lease-keeper takes the approved extend.
    const approve = await click(sys, { userId: "UADMIN1", action: "iaas.approval.approve", value: `ap-${idOf({ text: long.ack })}` });
    expect(approve.status).toBe(200);
    expect(await long.final()).toMatch(/The lease of `lease-f` now ends/);
    expect(near(await endOf(), 2 * 86_400_000)).toBe(true);

    // An admin: any length, a date, none.
    expect(await (await run("lease lease-f set 3d", "UADMIN1")).final()).toMatch(/The lease of `lease-f` now ends/);
    expect(near(await endOf(), 3 * 86_400_000)).toBe(true);
    expect(await (await run("lease lease-f set 2031-01-31T18:00Z", "UADMIN1")).final()).toMatch(/now ends 2031-01-31 18:00 UTC/);
    expect(await endOf()).toBe("2031-01-31T18:00:00.000Z");
    expect(await (await run("lease lease-f none", "UADMIN1")).final()).toMatch(/`lease-f` has no lease now/);
    expect(await endOf()).toBeUndefined();
    // `lease <vm>` still only shows it.
    expect((await sys.slash("lease lease-f", { user_id: "UALICE" })).json).toSatisfy((j: unknown) => /no lease|stays until someone deletes it/.test(textOf(j)));

    // The command's audit record follows its final result.
    const trail = await waitFor(async () => {
      const t = textOf((await sys.slash("audit lease-f", { user_id: "UADMIN1" })).json);
      return (t.match(/UADMIN1 lease\.set lease-f: succeeded/g) ?? []).length === 3 ? t : undefined;
    });
    expect(trail).toMatch(/UALICE lease\.extend lease-f: succeeded/);
    expect(trail).toMatch(/UALICE lease\.set lease-f: rejected \(IAAS_NOT_ALLOWED\)/);
    expect(trail).toMatch(/UBOB lease\.set lease-f: rejected \(IAAS_NOT_ALLOWED\)/);
  });
});
