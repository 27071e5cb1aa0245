import { describe, expect, it } from "vitest";
import type { VmSummary } from "@iaas/contracts";
import { LIST_CAP, listMessage } from "../src/presentation/views.js";

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
