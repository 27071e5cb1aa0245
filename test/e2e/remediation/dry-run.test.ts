import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitUntil } from "@iaas/testkit";
import { startWorld, type World } from "./helpers.js";

describe("dry run: decides and notifies, changes nothing", () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({
      remediation: { dryRun: true },
      vcsim: { datastoreSpaceGiB: { LocalDS_0: { capacity: 100, free: 5 }, LocalDS_1: { capacity: 100, free: 40 }, LocalDS_2: { capacity: 100, free: 60 } } },
    });
  });
  afterAll(async () => {
    await w?.close();
  });

  it("a CPU alarm on a hot-add VM: 'would add', the VM keeps its vCPUs", async () => {
    const before = await w.vm("DC0_H0_VM0");
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm("VM CPU Usage", { type: "VirtualMachine", name: "DC0_H0_VM0" }));
    const n = await w.waitNotice("the dry-run action", (x) => x.cause === posted.eventId);
    expect(n).toMatchObject({ kind: "remediation.action", dryRun: true, vm: "DC0_H0_VM0" });
    expect(n.text).toContain(`Would add 1 vCPU to \`DC0_H0_VM0\` (${before.numCpu} vCPU → ${before.numCpu + 1} vCPU)`);
    expect(await w.vm("DC0_H0_VM0")).toEqual(before);
    const post = await waitUntil("the notice in Slack", () => w.slackPosts().find((p) => p.text.includes(n.text)));
    expect(post.text).toContain("[dry run]");
  });

  it("no cooldown is taken: the next alarm is decided the same way", async () => {
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm("VM CPU Usage", { type: "VirtualMachine", name: "DC0_H0_VM0" }));
    expect((await w.waitNotice("the dry-run action", (x) => x.cause === posted.eventId)).text).toContain("Would add 1 vCPU");
  });

  it("a VM without hot-add: 'would defer', and nothing is queued for its power-off", async () => {
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm("VM Memory Usage", { type: "VirtualMachine", name: "DC0_H0_VM1" }));
    const n = await w.waitNotice("the dry-run deferral", (x) => x.cause === posted.eventId);
    expect(n).toMatchObject({ kind: "remediation.deferred", dryRun: true });
    const pending: string[] = [];
    for await (const k of await w.kv.keys("pending.>")) pending.push(k);
    expect(pending).toEqual([]);
  });

  it("a datastore alarm: 'would move' each VM to the best target, nothing moves", async () => {
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm("Datastore usage on disk", { type: "Datastore", name: "LocalDS_0" }));
    await w.caughtUp();
    const notices = w.noticesFor(posted.eventId);
    expect(notices).toHaveLength(4);
    for (const n of notices) {
      expect(n).toMatchObject({ kind: "remediation.action", dryRun: true });
      expect(n.text).toMatch(/^Would move .* from `LocalDS_0` to `LocalDS_2`/);
      expect((await w.vm(n.vm!)).datastores).toEqual(["LocalDS_0"]);
    }
    const audits = (await w.audits()).filter((a) => a.cause === posted.eventId);
    expect(audits.every((a) => a.dryRun && a.decision === "acted")).toBe(true);
  });
});
