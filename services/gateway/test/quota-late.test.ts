import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProxyEndpoints } from "@iaas/contracts";
import { startHarness, testPolicy, type Harness } from "./harness.js";

/**
 * A quota check slower than the ack's budget (a slow vCenter behind vm-info and vm-usage): the
 * ack goes out in time, saying the command is on its way, and the refusal follows on the
 * response_url; nothing is published. Stand-ins answer the three proxy endpoints a clone with a
 * team asks (vm-get at the door, vm-info for the source's size, vm-usage for the owner and the
 * team), each after 1.2 s, so the check takes longer than the ack may wait.
 */
const ALICE = "U0ALICE";
const text = (json: unknown) => String((json as { text?: string }).text ?? "");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a quota check slower than the ack", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(
      {},
      { policy: testPolicy({ confirm: [], teams: { web: { users: [ALICE] } }, quotas: { perUser: { vms: 5 }, perTeam: { vms: 1 } } }) },
    );
    const vm = { name: "web-01", moref: "vm-1", powerState: "poweredOff", numCpu: 1, memoryMB: 2048, template: false, owner: ALICE };
    const answers: Record<string, { delayMs: number; body: unknown }> = {
      [ProxyEndpoints.vmGet.subject]: { delayMs: 0, body: { vm } },
      [ProxyEndpoints.vmInfo.subject]: { delayMs: 1200, body: { vm: { ...vm, datastores: [], disks: [{ label: "Hard disk 1", capacityGB: 16 }], cpuHotAddEnabled: false, memoryHotAddEnabled: false } } },
      // The team already has its one VM: the clone is over the team's quota.
      [ProxyEndpoints.vmUsage.subject]: { delayMs: 1200, body: { owner: { vms: 1, cpu: 1, memoryGB: 2, diskGB: 16 }, team: { vms: 1, cpu: 1, memoryGB: 2, diskGB: 16 } } },
    };
    for (const [subject, a] of Object.entries(answers)) {
      h.nc.subscribe(subject, {
        callback: (_err, msg) => {
          void sleep(a.delayMs).then(() => msg.respond(JSON.stringify(a.body)));
        },
      });
    }
    await h.nc.flush();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("acks in time and posts the refusal, with the figures, to the response_url; nothing is published", async () => {
    const published = await h.publishedBy(async () => {
      const ack = await h.slash("clone web-01 web-02 team=web", { user_id: ALICE });
      expect(ack.status).toBe(200);
      expect(text(ack.json)).toMatch(/^Cloning `web-01` to `web-02`/);
      const post = await h.slack.waitFor((calls) => calls.find((c) => c.method === "response_url" && c.path === new URL(ack.responseUrl).pathname));
      expect(String(post.body.text)).toContain("Over the quota of team `web`: it uses 1 of 1 VM; this needs 1 more VM.");
    });
    expect(published).toEqual([]);
  });
});
