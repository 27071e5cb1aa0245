import { describe, expect, it } from "vitest";
import { IaasError } from "@iaas/contracts";
import { GatewayEnvSchema } from "../src/config.js";
import { parseCommand, takesVcenter, Verbs, type ParseResult } from "../src/commands/parse.js";
import { checkVcenter } from "../src/listeners/slash.js";
import { listMessage } from "../src/presentation/views.js";

function show(r: ParseResult) {
  return r.success ? r.data : { code: r.error.code, message: r.error.message, usage: r.error.usage };
}

describe("vc=<name>: the vCenter a command acts in", () => {
  it("every verb about VMs takes it, anywhere after the verb, and it lands in `vcenter`", () => {
    const cases: [string, object][] = [
      ["power off web-01 vc=lab", { verb: "power", action: "off", vm: "web-01", vcenter: "lab" }],
      ["power vc=lab off web-01", { verb: "power", action: "off", vm: "web-01", vcenter: "lab" }],
      ["info web-01 vc=dr-site", { verb: "info", vm: "web-01", vcenter: "dr-site" }],
      ["delete web-01 vc=lab", { verb: "delete", vm: "web-01", vcenter: "lab" }],
      ["resize web-01 cpu=2 vc=lab", { verb: "resize", vm: "web-01", cpu: 2, vcenter: "lab" }],
      ["clone web-01 web-02 vc=lab team=platform", { verb: "clone", source: "web-01", name: "web-02", team: "platform", vcenter: "lab" }],
      ["create web-03 small vc=lab", { verb: "create", name: "web-03", size: "small", vcenter: "lab" }],
      ["deploy tmpl web-04 vc=lab lease=7d", { verb: "deploy", template: "tmpl", name: "web-04", leaseMs: 7 * 86_400_000, vcenter: "lab" }],
      ["snapshot create web-01 before upgrade vc=lab", { verb: "snapshot", action: "create", vm: "web-01", name: "before upgrade", vcenter: "lab" }],
      ["snapshot list web-01 vc=lab", { verb: "snapshot", action: "list", vm: "web-01", vcenter: "lab" }],
      ["owner web-01 platform vc=lab", { verb: "owner", vm: "web-01", team: "platform", vcenter: "lab" }],
      ["lease web-01 vc=lab", { verb: "lease", vm: "web-01", vcenter: "lab" }],
      ["lease web-01 set 30d vc=lab", { verb: "lease", vm: "web-01", set: 30 * 86_400_000, vcenter: "lab" }],
      ["extend web-01 14d vc=lab power=on", { verb: "extend", vm: "web-01", durationMs: 14 * 86_400_000, powerOn: true, vcenter: "lab" }],
      ["list all web-* vc=lab", { verb: "list", all: true, glob: "web-*", vcenter: "lab" }],
      ["list vc=lab", { verb: "list", vcenter: "lab" }],
      ["templates vc=lab", { verb: "templates", vcenter: "lab" }],
    ];
    for (const [text, want] of cases) expect(show(parseCommand(text)), text).toEqual(want);
  });

  it("the key is case-insensitive and ids are lower case; without it there is no `vcenter` at all", () => {
    expect(show(parseCommand("power off web-01 VC=Lab"))).toEqual({ verb: "power", action: "off", vm: "web-01", vcenter: "lab" });
    expect(show(parseCommand("power off web-01"))).toEqual({ verb: "power", action: "off", vm: "web-01" });
  });

  it("a malformed id, an empty one or two vc= are refused with the command's usage", () => {
    expect(show(parseCommand("power off web-01 vc=lab_1"))).toMatchObject({ code: "IAAS_UNKNOWN_VCENTER", message: expect.stringContaining("`vc=lab_1` does not name a vCenter"), usage: ["power on|off|reset|suspend|shutdown|reboot <vm>"] });
    expect(show(parseCommand("info web-01 vc="))).toMatchObject({ code: "IAAS_UNKNOWN_VCENTER" });
    expect(show(parseCommand(`info web-01 vc=${"a".repeat(33)}`))).toMatchObject({ code: "IAAS_UNKNOWN_VCENTER" });
    expect(show(parseCommand("info web-01 vc=a vc=b"))).toMatchObject({ code: "IAAS_SYNTAX", message: "`vc=` is given twice." });
  });

  it("verbs that name no VM do not take it: it is an unexpected argument there", () => {
    for (const text of ["sizes vc=lab", "quota vc=lab", "approvals vc=lab"]) {
      expect(show(parseCommand(text)), text).toMatchObject({ code: "IAAS_SYNTAX", message: expect.stringContaining("Unexpected `vc=lab`") });
    }
    expect(Verbs.filter(takesVcenter)).toEqual(["list", "info", "templates", "create", "clone", "deploy", "power", "resize", "delete", "owner", "snapshot", "lease", "extend"]);
  });

  it("the gateway knows `default` and VCENTERS; an unknown id is IAAS_UNKNOWN_VCENTER naming the known ones", () => {
    const env = { SLACK_SIGNING_SECRET: "s", NATS_URL: "nats://127.0.0.1:4222" };
    expect(GatewayEnvSchema.parse(env).VCENTERS).toEqual(["default"]);
    const known = GatewayEnvSchema.parse({ ...env, VCENTERS: " lab, dr-site " }).VCENTERS;
    expect(known).toEqual(["default", "lab", "dr-site"]);
    expect(GatewayEnvSchema.safeParse({ ...env, VCENTERS: "default" }).success).toBe(false);
    expect(GatewayEnvSchema.safeParse({ ...env, VCENTERS: "lab,lab" }).success).toBe(false);
    expect(GatewayEnvSchema.safeParse({ ...env, VCENTERS: "Lab" }).success).toBe(false);
    expect(() => checkVcenter(known, undefined)).not.toThrow();
    expect(() => checkVcenter(known, "lab")).not.toThrow();
    expect(() => checkVcenter(known, "default")).not.toThrow();
    const err = (() => {
      try {
        checkVcenter(known, "nope");
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(IaasError);
    expect(err).toMatchObject({ code: "IAAS_UNKNOWN_VCENTER", message: "There is no vCenter `nope`; nothing was done. The vCenters are `default`, `lab`, `dr-site`; leave `vc=` out for `default`." });
    expect(() => checkVcenter(["default"], "lab")).toThrow("Only the default vCenter is configured (`default`): leave `vc=` out.");
  });

  it("list names each VM's vCenter when it has one, and the vCenters it could not read", () => {
    const vm = { moref: "vm-1", powerState: "poweredOn" as const, numCpu: 1, memoryMB: 1024, template: false };
    const m = listMessage([{ ...vm, name: "web-01", vcenter: "default" }, { ...vm, name: "web-01", vcenter: "lab" }], undefined, "all", 2, ["vCenter `dr` could not be read (down); its VMs are not in this list."]);
    expect(m.text).toBe("2 VMs:\nweb-01 (vc=default): powered on, 1 vCPU, 1 GB\nweb-01 (vc=lab): powered on, 1 vCPU, 1 GB\nvCenter `dr` could not be read (down); its VMs are not in this list.");
    expect(listMessage([{ ...vm, name: "web-01" }], undefined, "all").text).toBe("1 VM:\nweb-01: powered on, 1 vCPU, 1 GB");
  });
});

describe("help mentions vc= only with several vCenters", () => {
  it("one vCenter: no word of it; several: the note names them, and a verb's help says it when the verb takes it", async () => {
    const { helpMessage } = await import("../src/presentation/views.js");
    expect(helpMessage(["power", "sizes"]).text).not.toContain("vc=");
    const several = helpMessage(["power", "sizes"], undefined, () => undefined, ["default", "lab"]).text;
    expect(several).toContain("Add `vc=&lt;name&gt;` to a command about VMs to act in that vCenter (`default`, `lab`); without it, `default`. `/iaas list` without it lists every vCenter.");
    expect(helpMessage([], "power", () => undefined, ["default", "lab"]).text).toContain("`vc=&lt;name&gt;`");
    expect(helpMessage([], "sizes", () => undefined, ["default", "lab"]).text).not.toContain("vc=");
    expect(helpMessage([], "power").text).not.toContain("vc=");
  });
});
