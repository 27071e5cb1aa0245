import { describe, expect, expectTypeOf, it } from "vitest";
import type { z } from "zod";
import {
  ActorSchema,
  AuditSchema,
  CodedErrorSchema,
  CommandIdSchema,
  CommandSchema,
  EventClassSchema,
  FinalResultSchema,
  IsoTimeSchema,
  NewVmNameSchema,
  NoticeSchema,
  PowerCommandSchema,
  ProxyEndpoints,
  snapshotDescription,
  snapshotMadeBy,
  ResultSchema,
  SizeNameSchema,
  SubjectToken,
  VmCommandSchema,
  VmRefSchema,
  VsphereEventSchema,
  formatIssues,
  wireSchemas,
  type Command,
  type PowerAction,
  type ProxyRequest,
  type ProxyResponse,
  type VmAction,
  type VmSummary,
} from "@iaas/contracts";

/** What a schema says about a value it refuses, as the services pass it on (formatIssues). */
function refusal(schema: z.ZodType, value: unknown): string {
  const r = schema.safeParse(value);
  if (r.success) throw new Error(`accepted ${JSON.stringify(value)}`);
  return formatIssues(r.error);
}

const actor = { userId: "U0001", teamId: "T0001", channelId: "C0001", via: "slack" } as const;
const at = "2026-01-01T00:00:00Z";
const base = { id: "cmd-0001", actor, issuedAt: at };
const summary: VmSummary = { name: "web-01", moref: "vm-42", powerState: "poweredOn", numCpu: 2, memoryMB: 4096, template: false };

describe("identifiers", () => {
  it("a command id is 8-64 of a subject-safe alphabet", () => {
    expect(CommandIdSchema.parse("abcd_EF-12")).toBe("abcd_EF-12");
    expect(refusal(CommandIdSchema, "short")).toMatchInlineSnapshot(`"must be 8-64 of A-Z a-z 0-9 _ -"`);
    expect(refusal(CommandIdSchema, "cmd-0001.>")).toMatchInlineSnapshot(`"must be 8-64 of A-Z a-z 0-9 _ -"`);
  });

  it("a subject token refuses dots and wildcards", () => {
    expect(SubjectToken.parse("on")).toBe("on");
    expect(refusal(SubjectToken, "a.b")).toMatchInlineSnapshot(`"must be 1-128 of A-Z a-z 0-9 _ -"`);
    expect(refusal(SubjectToken, "*")).toMatchInlineSnapshot(`"must be 1-128 of A-Z a-z 0-9 _ -"`);
  });

  it("an ISO time needs an offset or Z", () => {
    expect(IsoTimeSchema.parse("2026-01-01T10:00:00+02:00")).toBe("2026-01-01T10:00:00+02:00");
    expect(refusal(IsoTimeSchema, "2026-01-01 10:00")).toMatchInlineSnapshot(`"Invalid ISO datetime"`);
  });

  it("an actor is a Slack user with optional Slack team, channel and groups", () => {
    expect(ActorSchema.parse({ ...actor, groups: ["S0ADMINS"] })).toEqual({ ...actor, groups: ["S0ADMINS"] });
    expect(refusal(ActorSchema, { userId: "bob", via: "slack" })).toMatchInlineSnapshot(`"userId: must be a Slack user id like U012ABC"`);
    expect(refusal(ActorSchema, { userId: "U0001", channelId: "#general", via: "slack" })).toMatchInlineSnapshot(`"channelId: must be a Slack channel id like C012ABC"`);
    expect(refusal(ActorSchema, { userId: "U0001", via: "email" })).toMatchInlineSnapshot(`"via: Invalid option: expected one of "slack"|"nats""`);
    expect(refusal(ActorSchema, { userId: "U0001", via: "nats", admin: true })).toMatchInlineSnapshot(`"Unrecognized key: "admin""`);
  });
});

describe("VM names", () => {
  it("a VM reference is an exact name or an inventory path", () => {
    expect(VmRefSchema.parse("web-01")).toBe("web-01");
    expect(VmRefSchema.parse("/DC0/vm/web 01")).toBe("/DC0/vm/web 01");
    expect(refusal(VmRefSchema, "")).toMatchInlineSnapshot(`"a VM name is required; must be an exact VM name or an inventory path: wildcards and control characters are not allowed"`);
    expect(refusal(VmRefSchema, "web-*")).toMatchInlineSnapshot(`"must be an exact VM name or an inventory path: wildcards and control characters are not allowed"`);
    expect(refusal(VmRefSchema, "web\u000001")).toMatchInlineSnapshot(`"must be an exact VM name or an inventory path: wildcards and control characters are not allowed"`);
    expect(refusal(VmRefSchema, " web-01")).toMatchInlineSnapshot(`"must not start or end with spaces"`);
    expect(refusal(VmRefSchema, "x".repeat(256))).toMatchInlineSnapshot(`"is longer than 255 characters"`);
  });

  it("a new VM's name carries no path, escape, wildcard or control character", () => {
    expect(NewVmNameSchema.parse("web-01")).toBe("web-01");
    for (const bad of ["a/b", "../../etc", "a\\b", "100%", "web-*", "web-?", "web-[12]", "a\tb"]) {
      expect(refusal(NewVmNameSchema, bad), bad).toBe("must not contain / \\ % wildcards or control characters");
    }
    expect(refusal(NewVmNameSchema, "")).toMatchInlineSnapshot(`"a name is required; must not contain / \\ % wildcards or control characters"`);
    expect(refusal(NewVmNameSchema, "x".repeat(81))).toMatchInlineSnapshot(`"is longer than 80 characters"`);
  });

  it("a command and the proxy request it leads to take the same new names", () => {
    const create = (name: string) => VmCommandSchema.safeParse({ ...base, area: "vm", action: "create", name }).success;
    const proxyCreate = (name: string) =>
      ProxyEndpoints.vmCreate.request.safeParse({ name, cpu: 1, memoryMB: 2048, diskGB: 16, provenance: { owner: "U0001", requestId: "cmd-0001" } }).success;
    const proxyClone = (name: string) =>
      ProxyEndpoints.vmClone.request.safeParse({ source: "web-01", name, sourceKind: "vm", provenance: { owner: "U0001", requestId: "cmd-0001" } }).success;
    for (const name of ["web-01", "café", "a/b", "a\\b", "50%", "db-*", "x".repeat(80), "x".repeat(81)]) {
      expect([name, create(name), proxyClone(name)], name).toEqual([name, proxyCreate(name), proxyCreate(name)]);
    }
  });

  it("a size name is one word", () => {
    expect(SizeNameSchema.parse("small")).toBe("small");
    expect(refusal(SizeNameSchema, "extra large")).toMatchInlineSnapshot(`"must be one word"`);
  });
});

describe("commands", () => {
  it("a power command names one VM and one action", () => {
    const cmd = { ...base, area: "power", action: "off", vm: "web-01" };
    expect(PowerCommandSchema.parse(cmd)).toEqual(cmd);
    expect(refusal(PowerCommandSchema, { ...cmd, action: "explode" })).toMatchInlineSnapshot(`"action: Invalid option: expected one of "on"|"off"|"reset"|"suspend"|"shutdown"|"reboot""`);
    expect(refusal(PowerCommandSchema, { ...cmd, vm: "*" })).toMatchInlineSnapshot(`"vm: must be an exact VM name or an inventory path: wildcards and control characters are not allowed"`);
    expect(refusal(PowerCommandSchema, { ...cmd, issuedAt: "yesterday" })).toMatchInlineSnapshot(`"issuedAt: Invalid ISO datetime"`);
    expect(refusal(PowerCommandSchema, { ...cmd, force: true })).toMatchInlineSnapshot(`"Unrecognized key: "force""`);
  });

  it("each VM action has its own fields", () => {
    const ok = [
      { action: "create", name: "web-02", size: "small" },
      { action: "create", name: "web-02" },
      { action: "clone", source: "web-01", name: "web-02" },
      { action: "deploy", template: "tmpl-ubuntu", name: "web-02", size: "large" },
      { action: "delete", vm: "web-01" },
      { action: "resize", vm: "web-01", cpu: 4 },
      { action: "resize", vm: "web-01", memoryGB: 1.5 },
    ];
    for (const c of ok) expect(VmCommandSchema.parse({ ...base, area: "vm", ...c })).toEqual({ ...base, area: "vm", ...c });
    const vm = (c: object) => ({ ...base, area: "vm", ...c });
    expect(refusal(VmCommandSchema, vm({ action: "create" }))).toMatchInlineSnapshot(`"name: Invalid input: expected string, received undefined"`);
    expect(refusal(VmCommandSchema, vm({ action: "clone", name: "x-01" }))).toMatchInlineSnapshot(`"source: Invalid input: expected string, received undefined"`);
    expect(refusal(VmCommandSchema, vm({ action: "deploy", template: "t*", name: "x-01" }))).toMatchInlineSnapshot(`"template: must be an exact VM name or an inventory path: wildcards and control characters are not allowed"`);
    expect(refusal(VmCommandSchema, vm({ action: "delete", vm: "web-01", name: "x" }))).toMatchInlineSnapshot(`"Unrecognized key: "name""`);
    expect(refusal(VmCommandSchema, vm({ action: "resize", vm: "web-01", cpu: 1.5 }))).toMatchInlineSnapshot(`"cpu: Invalid input: expected int, received number"`);
    expect(refusal(VmCommandSchema, vm({ action: "resize", vm: "web-01", memoryGB: 0 }))).toMatchInlineSnapshot(`"memoryGB: Too small: expected number to be >0"`);
    expect(refusal(VmCommandSchema, vm({ action: "migrate", vm: "web-01" }))).toMatchInlineSnapshot(`"action: Invalid discriminator value. Expected 'create' | 'clone' | 'deploy' | 'delete' | 'resize' | 'owner'"`);
  });

  it("the command union is by area", () => {
    expect(CommandSchema.parse({ ...base, area: "power", action: "on", vm: "web-01" }).area).toBe("power");
    expect(refusal(CommandSchema, { ...base, area: "network", action: "on" })).toMatchInlineSnapshot(`"area: Invalid discriminator value. Expected 'power' | 'vm' | 'snapshot' | 'lease'"`);
  });

  it("the command types are the contract handlers switch on", () => {
    expectTypeOf<PowerAction>().toEqualTypeOf<"on" | "off" | "reset" | "suspend" | "shutdown" | "reboot">();
    expectTypeOf<VmAction>().toEqualTypeOf<"create" | "clone" | "deploy" | "delete" | "resize" | "owner">();
    expectTypeOf<Command["area"]>().toEqualTypeOf<"power" | "vm" | "snapshot" | "lease">();
    expectTypeOf<Extract<Command, { action: "resize" }>>().toHaveProperty("cpu").toEqualTypeOf<number | undefined>();
  });
});

describe("results", () => {
  const progress = { id: "cmd-0001", status: "progress", command: "power.off", message: "working", at };
  const failed = { id: "cmd-0001", status: "failed", command: "power.off", error: { code: "IAAS_VM_NOT_FOUND", message: "No VM by that name.", retryable: false }, at };

  it("progress, then one final result", () => {
    expect(ResultSchema.parse(progress)).toEqual(progress);
    expect(FinalResultSchema.parse(failed)).toEqual(failed);
    expect(refusal(FinalResultSchema, progress)).toMatchInlineSnapshot(`"status: Invalid discriminator value. Expected 'succeeded' | 'failed'"`);
    expect(refusal(ResultSchema, { ...failed, error: { ...failed.error, code: "E_OOPS" } })).toMatch(/^error\.code: Invalid option: expected one of "IAAS_BAD_REQUEST"\|/);
  });

  it("a coded error carries a catalogue code and a bounded message", () => {
    expect(CodedErrorSchema.parse(failed.error)).toEqual(failed.error);
    expect(refusal(CodedErrorSchema, { ...failed.error, message: "" })).toMatchInlineSnapshot(`"message: Too small: expected string to have >=1 characters"`);
    expect(refusal(CodedErrorSchema, { ...failed.error, message: "x".repeat(2001) })).toMatchInlineSnapshot(`"message: Too big: expected string to have <=2000 characters"`);
  });
});

describe("audit and notices", () => {
  it("a command audit record and a remediation one", () => {
    const cmd = { kind: "command", id: "cmd-0001", actor, command: "power.off", vm: "web-01", outcome: "rejected", code: "IAAS_NOT_ALLOWED", message: "no", at };
    const rem = { kind: "remediation", id: "rem-cpu-0123456789", rule: "cpu", decision: "acted", change: { cpu: { from: 2, to: 4 } }, dryRun: false, message: "grew", at };
    expect(AuditSchema.parse(cmd)).toEqual(cmd);
    expect(AuditSchema.parse(rem)).toEqual(rem);
    expect(refusal(AuditSchema, { ...cmd, outcome: "maybe" })).toMatchInlineSnapshot(`"outcome: Invalid option: expected one of "succeeded"|"failed"|"rejected""`);
    expect(refusal(AuditSchema, { ...rem, reason: "Not A Slug" })).toMatchInlineSnapshot(`"reason: Invalid string: must match pattern /^[a-z][a-z0-9-]{1,40}$/"`);
  });

  it("a notice id is stable text the gateway can key on", () => {
    const n = { id: "rem-cpu-0123456789", kind: "remediation.action", severity: "info", text: "grew web-01", at };
    expect(NoticeSchema.parse(n)).toEqual(n);
    expect(refusal(NoticeSchema, { ...n, id: "short" })).toMatchInlineSnapshot(`"id: Invalid string: must match pattern /^[A-Za-z0-9_:.-]{8,128}$/"`);
  });
});

describe("vSphere events", () => {
  const ev = { id: "1", source: "https://vc/sdk", eventClass: "VmPoweredOffEvent", key: 7, time: at, receivedAt: at, via: "veba", data: { Key: 7 } };

  it("an event is its source, key and class", () => {
    expect(VsphereEventSchema.parse(ev)).toEqual(ev);
    expect(refusal(VsphereEventSchema, { ...ev, key: -1 })).toMatchInlineSnapshot(`"key: Too small: expected number to be >=0"`);
    expect(refusal(VsphereEventSchema, { ...ev, via: "email" })).toMatchInlineSnapshot(`"via: Invalid option: expected one of "veba"|"poller""`);
  });

  it("an event class is subject levels", () => {
    expect(EventClassSchema.parse("com.vmware.vc.HA.ClusterFailoverActionCompletedEvent")).toBe("com.vmware.vc.HA.ClusterFailoverActionCompletedEvent");
    for (const bad of ["a..b", "a.>", "a b", ".a"]) expect(refusal(EventClassSchema, bad), bad).toBe("must be dot-separated parts of A-Z a-z 0-9 _ -");
  });
});

describe("proxy endpoints", () => {
  const owner = { owner: "U0001", requestId: "cmd-0001" };

  it("each endpoint takes a good request and refuses a bad one", () => {
    const good: { [E in keyof typeof ProxyEndpoints]: ProxyRequest<E> } = {
      vmGet: { vm: "web-01" },
      vmInfo: { vm: "/DC0/vm/web-01", vcenter: "lab" },
      vmList: { owner: "U0001", includeTemplates: true, scope: { owner: "U0001", teams: ["S0PLAT", "platform"] } },
      vmUsage: { owner: "U0001", team: "S0PLAT" },
      vmSetOwner: { vm: "web-01", owner: "U0002", team: null },
      templateList: {},
      datastoreList: {},
      vmPower: { vm: "web-01", action: "reset", timeoutMs: 30_000 },
      vmCreate: { name: "web-02", cpu: 2, memoryMB: 4096, diskGB: 40, provenance: owner, placement: { folder: "/DC0/vm" } },
      vmClone: { source: "tmpl", name: "web-02", sourceKind: "template", memoryMB: 2048, provenance: owner },
      vmDestroy: { vm: "web-01", powerOffFirst: true },
      vmReconfigure: { vm: "web-01", cpu: 4 },
      vmRelocate: { vm: "web-01", datastore: "LocalDS_1" },
      datastoreVms: { datastore: "LocalDS_0" },
      alarmAcknowledge: { alarm: "alarm-6", entity: { type: "VirtualMachine", value: "vm-42" } },
      eventsRead: { afterKey: 10, eventTypes: ["VmPoweredOffEvent"], maxCount: 100 },
      snapshotList: { vm: "web-01" },
      snapshotCreate: { vm: "web-01", name: "before upgrade", madeBy: owner, limit: 3 },
      snapshotRevert: { vm: "web-01" },
      snapshotRemove: { vm: "/DC0/vm/web-01", name: "s1", moref: "snapshot-12" },
      snapshotsMade: { before: "2026-12-01T00:00:00Z", limit: 10 },
      vmSetLease: { vm: "web-01", expires: "2026-12-31T00:00:00Z" },
      vmLeases: { limit: 100 },
    };
    for (const [name, req] of Object.entries(good)) {
      expect(ProxyEndpoints[name as keyof typeof ProxyEndpoints].request.safeParse(req).success, name).toBe(true);
    }
    const e = ProxyEndpoints;
    expect(refusal(e.vmGet.request, { vm: "web-01", vcenter: "Lab One" })).toMatchInlineSnapshot(`"vcenter: Invalid string: must match pattern /^[a-z0-9-]{1,32}$/"`);
    expect(refusal(e.vmList.request, { owner: "bob" })).toMatchInlineSnapshot(`"owner: must be a Slack user id like U012ABC"`);
    expect(refusal(e.vmSetOwner.request, { vm: "web-01", team: "Platform Team" })).toMatchInlineSnapshot(`"team: must be a Slack user group id like S012ABC or a policy team name like platform"`);
    expect(refusal(e.vmPower.request, { vm: "web-01", action: "on", timeoutMs: 10 })).toMatchInlineSnapshot(`"timeoutMs: Too small: expected number to be >=1000"`);
    expect(refusal(e.vmCreate.request, { ...good.vmCreate, memoryMB: 4095 })).toMatchInlineSnapshot(`"memoryMB: Invalid number: must be a multiple of 4"`);
    expect(refusal(e.vmCreate.request, { ...good.vmCreate, provenance: { owner: "U0001" } })).toMatchInlineSnapshot(`"provenance.requestId: Invalid input: expected string, received undefined"`);
    expect(refusal(e.vmClone.request, { ...good.vmClone, sourceKind: "folder" })).toMatchInlineSnapshot(`"sourceKind: Invalid option: expected one of "vm"|"template""`);
    expect(refusal(e.vmDestroy.request, { vm: "web-01", force: true })).toMatchInlineSnapshot(`"Unrecognized key: "force""`);
    expect(refusal(e.vmReconfigure.request, { vm: "web-01", cpu: 0 })).toMatchInlineSnapshot(`"cpu: Too small: expected number to be >=1"`);
    expect(refusal(e.vmRelocate.request, { vm: "web-01" })).toMatchInlineSnapshot(`"datastore: Invalid input: expected string, received undefined"`);
    expect(refusal(e.datastoreVms.request, { datastore: "" })).toMatchInlineSnapshot(`"datastore: Too small: expected string to have >=1 characters"`);
    expect(refusal(e.eventsRead.request, { eventTypes: ["Vm.Powered"] })).toMatchInlineSnapshot(`"eventTypes.0: Invalid string: must match pattern /^[A-Za-z]{1,80}$/"`);
    expect(refusal(e.alarmAcknowledge.request, { alarm: "alarm-6", entity: { type: "Folder", value: "group-v4" } })).toMatchInlineSnapshot(`"entity.type: Invalid option: expected one of "VirtualMachine"|"Datastore"|"HostSystem"|"ClusterComputeResource""`);
    expect(refusal(e.templateList.request, { owner: "U0001" })).toMatchInlineSnapshot(`"Unrecognized key: "owner""`);
    expect(refusal(e.snapshotCreate.request, { ...good.snapshotCreate, name: " s1" })).toBe("name: must not start or end with spaces");
    expect(refusal(e.snapshotRemove.request, { vm: "web-01" })).toBe("name: Invalid input: expected string, received undefined");
  });

  it("a snapshot's iaas mark reads back from its description, and nothing else reads as one", () => {
    const by = { owner: "U0001", requestId: "r-abcdefgh" };
    expect(snapshotDescription(by)).toBe("Made by iaas for <@U0001> (request r-abcdefgh)");
    expect(snapshotMadeBy(snapshotDescription(by))).toEqual(by);
    for (const other of [undefined, "", "nightly backup", "Made by iaas for <@U0001>", "made by iaas for <@U0001> (request r-abcdefgh)", "Made by iaas for <@U0001> (request r-abcdefgh) and edited"]) expect(snapshotMadeBy(other), String(other)).toBeUndefined();
  });

  it("responses carry VM facts", () => {
    expect(ProxyEndpoints.vmGet.response.parse({ vm: summary })).toEqual({ vm: summary });
    expect(refusal(ProxyEndpoints.vmGet.response, { vm: { ...summary, powerState: "on" } })).toMatchInlineSnapshot(`"vm.powerState: Invalid option: expected one of "poweredOn"|"poweredOff"|"suspended""`);
    expect(refusal(ProxyEndpoints.vmDestroy.response, { name: "web-01" })).toMatchInlineSnapshot(`"destroyed: Invalid input: expected boolean, received undefined"`);
  });

  it("the request and response types follow the endpoint", () => {
    expectTypeOf<ProxyRequest<"vmPower">["action"]>().toEqualTypeOf<PowerAction>();
    expectTypeOf<ProxyResponse<"vmGet">>().toEqualTypeOf<{ vm: VmSummary }>();
    expectTypeOf<ProxyResponse<"vmCreate">>().toEqualTypeOf<{ vm: VmSummary; created: boolean }>();
  });
});

describe("wire schemas", () => {
  it("names every message for the generated JSON Schemas", () => {
    expect(Object.keys(wireSchemas())).toMatchInlineSnapshot(`
      [
        "command",
        "command.power",
        "command.vm",
        "result",
        "error",
        "audit",
        "approval",
        "notice",
        "event.vsphere",
        "proxy.vcenter.vm.get.request",
        "proxy.vcenter.vm.get.response",
        "proxy.vcenter.vm.info.request",
        "proxy.vcenter.vm.info.response",
        "proxy.vcenter.vm.list.request",
        "proxy.vcenter.vm.list.response",
        "proxy.vcenter.vm.usage.request",
        "proxy.vcenter.vm.usage.response",
        "proxy.vcenter.vm.owner.request",
        "proxy.vcenter.vm.owner.response",
        "proxy.vcenter.vm.lease.request",
        "proxy.vcenter.vm.lease.response",
        "proxy.vcenter.vm.leases.request",
        "proxy.vcenter.vm.leases.response",
        "proxy.vcenter.template.list.request",
        "proxy.vcenter.template.list.response",
        "proxy.vcenter.datastore.list.request",
        "proxy.vcenter.datastore.list.response",
        "proxy.vcenter.vm.power.request",
        "proxy.vcenter.vm.power.response",
        "proxy.vcenter.vm.create.request",
        "proxy.vcenter.vm.create.response",
        "proxy.vcenter.vm.clone.request",
        "proxy.vcenter.vm.clone.response",
        "proxy.vcenter.vm.destroy.request",
        "proxy.vcenter.vm.destroy.response",
        "proxy.vcenter.vm.reconfigure.request",
        "proxy.vcenter.vm.reconfigure.response",
        "proxy.vcenter.vm.relocate.request",
        "proxy.vcenter.vm.relocate.response",
        "proxy.vcenter.datastore.vms.request",
        "proxy.vcenter.datastore.vms.response",
        "proxy.vcenter.alarm.acknowledge.request",
        "proxy.vcenter.alarm.acknowledge.response",
        "proxy.vcenter.events.read.request",
        "proxy.vcenter.events.read.response",
        "proxy.vcenter.vm.snapshot.list.request",
        "proxy.vcenter.vm.snapshot.list.response",
        "proxy.vcenter.vm.snapshot.create.request",
        "proxy.vcenter.vm.snapshot.create.response",
        "proxy.vcenter.vm.snapshot.revert.request",
        "proxy.vcenter.vm.snapshot.revert.response",
        "proxy.vcenter.vm.snapshot.remove.request",
        "proxy.vcenter.vm.snapshot.remove.response",
        "proxy.vcenter.snapshot.made.request",
        "proxy.vcenter.snapshot.made.response",
      ]
    `);
  });
});
