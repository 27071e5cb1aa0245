import { describe, expect, it } from "vitest";
import type { VmSummary } from "@iaas/contracts";
import { LIST_CAP, listMessage, quotaMessage } from "../src/presentation/views.js";

const vm = (i: number): VmSummary => ({ name: `vm-${String(i).padStart(2, "0")}`, moref: `vm-${i}`, powerState: i % 2 ? "poweredOn" : "poweredOff", numCpu: 1 + (i % 4), memoryMB: 1024 * (1 + (i % 3)), template: false, ...(i === 1 ? { owner: "U0ALICE" } : {}) });

describe("list answers", () => {
  it("are capped and say how many more there are", () => {
    const m = listMessage(Array.from({ length: LIST_CAP + 7 }, (_, i) => vm(i)), undefined);
    const lines = m.text.split("\n");
    expect(lines[0]).toBe(`${LIST_CAP + 7} VMs:`);
    expect(lines).toHaveLength(LIST_CAP + 2);
    expect(lines.at(-1)).toBe("…and 7 more. Narrow the list with a pattern: `/iaas list web-*`.");
    expect(m.blocks!.length).toBeLessThanOrEqual(50);
    expect(JSON.stringify(m.blocks)).toContain("…and 7 more.");
  });

  it("count what the proxy says matched, not what it sent (it sends only the first LIST_CAP)", () => {
    const m = listMessage(Array.from({ length: LIST_CAP }, (_, i) => vm(i)), "vm-*", "own", 10_000);
    const lines = m.text.split("\n");
    expect(lines[0]).toBe("10000 of your VMs matching `vm-*`:");
    expect(lines).toHaveLength(LIST_CAP + 2);
    expect(lines.at(-1)).toBe(`…and ${10_000 - LIST_CAP} more. Narrow the list with a pattern: \`/iaas list web-*\`.`);
    expect(JSON.stringify(m.blocks)).toContain(`(showing ${LIST_CAP})`);
  });

  it("show each VM as a field: name, power, CPU, memory and owner", () => {
    const m = listMessage([vm(1)], "vm-*");
    expect(m.blocks).toMatchInlineSnapshot(`
      [
        {
          "text": {
            "text": "*1 VM matching \`vm-*\`*",
            "type": "mrkdwn",
          },
          "type": "section",
        },
        {
          "fields": [
            {
              "text": "*vm-01*
      :large_green_circle: on · 2 vCPU · 2 GB · <@U0ALICE>",
              "type": "mrkdwn",
            },
          ],
          "type": "section",
        },
      ]
    `);
  });

  it("escape what vCenter returns, so a VM name cannot mention or link", () => {
    const m = listMessage([{ ...vm(2), name: "<!channel>" }], undefined);
    expect(JSON.stringify(m.blocks)).toContain("&lt;!channel&gt;");
    expect(JSON.stringify(m.blocks)).not.toContain("<!channel>");
  });
});

describe("quota answers", () => {
  const usage = (vms: number, cpu: number, memoryGB: number, diskGB: number) => ({ vms, cpu, memoryGB, diskGB });
  it("show use, what requests in flight hold and the limit, for the caller and each team", () => {
    const m = quotaMessage(
      { kind: "user", id: "U0ALICE", used: usage(9, 14, 28, 160), held: { usage: usage(1, 2, 4, 16), count: 1 }, limits: { vms: 10, cpu: 16, memoryGB: 64 } },
      [
        { kind: "team", id: "S0PLATFORM", used: usage(3, 6, 12, 48), held: { usage: usage(0, 0, 0, 0), count: 0 }, limits: { vms: 50 } },
        { kind: "team", id: "web_ops", used: usage(0, 0, 0, 0), held: { usage: usage(0, 0, 0, 0), count: 0 }, limits: {} },
      ],
    );
    expect(m.text).toMatchInlineSnapshot(`
      "Your quota: VMs 9 + 1 reserved of 10, vCPU 14 + 2 reserved of 16, Memory (GB) 28 + 4 reserved of 64, Disk (GB) 160 + 16 reserved of no limit (1 request in flight holds a share)
      Quota of S0PLATFORM: VMs 3 of 50, vCPU 6 of no limit, Memory (GB) 12 of no limit, Disk (GB) 48 of no limit
      Quota of team web_ops: VMs 0 of no limit, vCPU 0 of no limit, Memory (GB) 0 of no limit, Disk (GB) 0 of no limit"
    `);
    expect(m.blocks!.map((b) => ("text" in b && b.text ? b.text.text : ""))).toEqual([
      "*Your quota* (1 request in flight holds a share)",
      "*Quota of <!subteam^S0PLATFORM>*",
      "*Quota of team `web_ops`*",
    ]);
  });

  it("say so when the caller is in no team", () => {
    const m = quotaMessage({ kind: "user", id: "U0BOB", used: usage(0, 0, 0, 0), held: { usage: usage(0, 0, 0, 0), count: 0 }, limits: { vms: 10 } }, []);
    expect(JSON.stringify(m.blocks)).toContain("You are in no team the policy knows.");
  });
});
