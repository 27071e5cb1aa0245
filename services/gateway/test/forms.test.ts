import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Actor, VmSummary } from "@iaas/contracts";
import { NO_USAGE, loadPolicy } from "@iaas/policy";
import { HOME_PAGE_SIZE, MAX_VIEW_BLOCKS, homeView, type HomeContent } from "../src/forms/home.js";
import { MetadataSigner, vmFormView } from "../src/forms/forms.js";
import { vmButtons } from "../src/forms/vm-actions.js";

const policy = loadPolicy({ env: { IAAS_ADMINS: "UADMIN1" } });
const alice: Actor = { userId: "UALICE1", teamId: "T0001", via: "slack" };
const vm = (i: number, extra: Partial<VmSummary> = {}): VmSummary => ({
  name: `app-${String(i).padStart(3, "0")}`,
  moref: `vm-${i}`,
  powerState: i % 2 ? "poweredOn" : "poweredOff",
  numCpu: 2,
  memoryMB: 4096,
  template: false,
  owner: "UALICE1",
  ...extra,
});
const NOW = Date.parse("2026-12-07T12:00:00Z");
const quota = { mine: { kind: "user" as const, id: "UALICE1", used: { ...NO_USAGE, vms: 2, cpu: 4, memoryGB: 8, diskGB: 80 }, held: { usage: NO_USAGE, count: 0 }, limits: policy.quotaOf("user", "UALICE1") }, teams: [] };

function home(vms: VmSummary[], total = vms.length, page = 0, roles = ["viewer", "operator", "builder"]): HomeContent {
  const shown = vms.slice(page * HOME_PAGE_SIZE, (page + 1) * HOME_PAGE_SIZE);
  return { userId: "UALICE1", roles, vms: shown, total, page, buttons: new Map(shown.map((v) => [v.name, vmButtons(policy, alice, v)])), approvals: [], quota, now: NOW, canList: true };
}

describe("the App Home view", () => {
  it("stays under Slack's 100 blocks per view with a large inventory, with Previous / Next", () => {
    const many = Array.from({ length: 1000 }, (_, i) => vm(i));
    for (const page of [0, 1, 49]) {
      const v = homeView(home(many, 1000, page), "m") as { blocks: { type: string; elements?: { text: { text: string } }[] }[] };
      expect(v.blocks.length).toBeLessThanOrEqual(MAX_VIEW_BLOCKS);
      const nav = v.blocks.flatMap((b) => b.elements ?? []).map((e) => e.text.text).filter((t) => t === "Previous" || t === "Next");
      expect(nav).toEqual(page === 0 ? ["Next"] : page === 49 ? ["Previous"] : ["Previous", "Next"]);
    }
  });

  it("tells a user bound to no role that there is nothing for them yet", () => {
    const v = homeView(home([], 0, 0, []), "m");
    expect(JSON.stringify(v)).toMatch(/no role in the IaaS policy/);
  });

  it("offers only the buttons the policy lets the user run on each VM", () => {
    const protectedVm = vm(1, { name: "prod-db" });
    // A protected VM keeps what changes nothing IT guards: its lease and a new snapshot.
    expect(vmButtons(policy, alice, protectedVm).map((b) => b.text.text)).toEqual(["Extend", "Snapshot"]);
    expect(vmButtons(policy, alice, vm(2, { owner: "UBOB1" }))).toEqual([]);
    expect(vmButtons(policy, alice, vm(3)).map((b) => b.value)).toEqual(expect.arrayContaining(["power off app-003", "delete app-003"]));
  });
});

/**
 * The Block Kit the product sends for the create modal, the deploy modal and a Home view, written
 * to docs/slack/ for Slack's Block Kit Builder. The files are checked in; this fails when they
 * differ from what the code makes (IAAS_WRITE_SLACK_EXAMPLES=1 rewrites them).
 */
describe("docs/slack examples", () => {
  const signer = new MetadataSigner("docs-example-secret");
  const examples: Record<string, unknown> = {
    "create-modal.json": vmFormView("create", policy, alice, "(signed form state)"),
    "deploy-modal.json": vmFormView("deploy", policy, alice, "(signed form state)"),
    "home.json": homeView(
      home([
        vm(1, { name: "web-01", leaseExpires: "2026-12-19T12:00:00Z", snapshots: 1 }),
        vm(2, { name: "db-test", leaseExpires: "2026-12-08T09:00:00Z", snapshots: 0, team: "platform" }),
      ]),
      signer.sign({ example: true }).replace(/\..*$/, ".(signature)"),
    ),
  };
  for (const [file, view] of Object.entries(examples)) {
    it(`docs/slack/${file} is what the product sends`, () => {
      const path = fileURLToPath(new URL(`../../../docs/slack/${file}`, import.meta.url));
      const want = `${JSON.stringify(view, null, 2)}\n`;
      if (process.env.IAAS_WRITE_SLACK_EXAMPLES === "1") writeFileSync(path, want);
      expect(readFileSync(path, "utf8"), `docs/slack/${file} is stale: run IAAS_WRITE_SLACK_EXAMPLES=1 npx vitest run services/gateway/test/forms.test.ts`).toBe(want);
    });
  }
});
