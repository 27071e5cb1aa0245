import { describe, expect, expectTypeOf, it } from "vitest";
import { z } from "zod";
import {
  CommandMsgIds,
  ErrorCatalogue,
  ErrorCodeSchema,
  IaasError,
  Subjects,
  eventSubject,
  formatIssues,
  noticeSubject,
  normalizeEventData,
  oneLine,
  parseCommandSubject,
  readEventCreatedTime,
  readEventKey,
  token,
  type CodedError,
  type ErrorCode,
} from "@iaas/contracts";

describe("the error catalogue", () => {
  it("every code is IAAS_ upper case, with an HTTP-like status and texts", () => {
    for (const [code, e] of Object.entries(ErrorCatalogue)) {
      expect(code).toMatch(/^IAAS_[A-Z_]+$/);
      expect(e.status, code).toBeGreaterThanOrEqual(400);
      expect(e.status, code).toBeLessThan(600);
      expect(e.message, code).toMatch(/\.$/);
      expect(e.fix.length, code).toBeGreaterThan(0);
    }
    expect(ErrorCodeSchema.options).toEqual(Object.keys(ErrorCatalogue));
    expectTypeOf<ErrorCode>().toEqualTypeOf<keyof typeof ErrorCatalogue>();
  });

  it("an IaasError takes the catalogue's message, status and retryability unless told", () => {
    const e = new IaasError("IAAS_VCENTER_UNAVAILABLE");
    expect([e.message, e.status, e.retryable, e.name]).toEqual(["vCenter cannot be reached right now.", 503, true, "IaasError"]);
    const told = new IaasError("IAAS_VM_NOT_FOUND", "No VM named `web-09`.\nTry /iaas list.", { retryable: true });
    expect(told.toJSON()).toMatchInlineSnapshot(`
      {
        "code": "IAAS_VM_NOT_FOUND",
        "message": "No VM named \`web-09\`.; Try /iaas list.",
        "retryable": true,
      }
    `);
    expectTypeOf(told.toJSON()).toEqualTypeOf<CodedError>();
  });

  it("wraps what it does not know, keeping the cause", () => {
    const cause = new Error("socket hang up");
    const e = IaasError.from(cause, "IAAS_UNAVAILABLE");
    expect([e.code, e.message, e.cause]).toEqual(["IAAS_UNAVAILABLE", ErrorCatalogue.IAAS_UNAVAILABLE.message, cause]);
    expect(IaasError.from(e)).toBe(e);
    expect(IaasError.from("boom").code).toBe("IAAS_INTERNAL");
    expect(IaasError.fromCoded({ code: "IAAS_TIMEOUT", message: "slow", retryable: false }).toJSON()).toEqual({ code: "IAAS_TIMEOUT", message: "slow", retryable: false });
  });

  it("texts are one line", () => {
    expect(oneLine("  a\r\nb\n\nc ")).toMatchInlineSnapshot(`"a; b; c"`);
  });

  it("formatIssues names the field of each issue", () => {
    const r = z.strictObject({ a: z.object({ b: z.number() }), c: z.string() }).safeParse({ a: { b: "x" } });
    expect(r.success).toBe(false);
    expect(formatIssues(r.error!)).toMatchInlineSnapshot(`"a.b: Invalid input: expected number, received string; c: Invalid input: expected string, received undefined"`);
  });
});

describe("subjects", () => {
  it("every subject built from a value refuses a value that would widen it", () => {
    expect(Subjects.result("cmd-0001")).toBe("iaas.result.cmd-0001");
    expect(() => Subjects.result(">")).toThrowErrorMatchingInlineSnapshot(`[TypeError: invalid command id ">": must be 1-128 of A-Z a-z 0-9 _ -]`);
    expect(() => Subjects.command("power", "on.>")).toThrowErrorMatchingInlineSnapshot(`[TypeError: invalid action "on.>": must be 1-128 of A-Z a-z 0-9 _ -]`);
    expect(() => token("a b", "vcenter name")).toThrowErrorMatchingInlineSnapshot(`[TypeError: invalid vcenter name "a b": must be 1-128 of A-Z a-z 0-9 _ -]`);
  });

  it("a command subject parses back only for a known area and action", () => {
    expect(parseCommandSubject(Subjects.command("vm", "resize"))).toEqual({ area: "vm", action: "resize" });
    for (const s of ["iaas.cmd.power.explode", "iaas.cmd.net.on", "iaas.cmd.power", "iaas.cmd.power.on.x", "iaas.result.power.on"]) {
      expect(parseCommandSubject(s), s).toBeUndefined();
    }
  });

  it("a notice's and an event's dots become subject levels, each a token", () => {
    expect(noticeSubject("remediation.action")).toBe("iaas.notify.remediation.action");
    expect(eventSubject("com.vmware.vc.HA.X")).toBe("vsphere.event.com.vmware.vc.HA.X");
    expect(() => eventSubject("a.*")).toThrowErrorMatchingInlineSnapshot(`[TypeError: invalid event class part "*": must be 1-128 of A-Z a-z 0-9 _ -]`);
  });
});

describe("message ids", () => {
  it("what a command leads to has ids that stay the same on redelivery", () => {
    const id = "cmd-0001";
    expect([
      CommandMsgIds.command(id),
      CommandMsgIds.progress(id, 2, 1),
      CommandMsgIds.final(id),
      CommandMsgIds.audit(id, "rejected"),
      CommandMsgIds.deadLetter(id),
    ]).toMatchInlineSnapshot(`
      [
        "cmd-0001",
        "cmd-0001:progress:2:1",
        "cmd-0001:final",
        "cmd-0001:audit:rejected",
        "cmd-0001:dlq",
      ]
    `);
    expectTypeOf(CommandMsgIds.audit).parameter(1).toEqualTypeOf<"succeeded" | "failed" | "rejected">();
  });
});

describe("reading vSphere event data", () => {
  it("takes the key and time in PascalCase or camelCase", () => {
    expect([readEventKey({ Key: 7 }), readEventKey({ key: "8" }), readEventKey({ Key: -1 }), readEventKey({ Key: "7a" }), readEventKey(null)]).toEqual([7, 8, undefined, undefined, undefined]);
    expect([readEventCreatedTime({ CreatedTime: "2026-01-01T10:00:00+02:00" }), readEventCreatedTime({ createdTime: "never" })]).toEqual(["2026-01-01T08:00:00.000Z", undefined]);
  });

  it("finds the alarm, its entity and the status change", () => {
    const data = {
      Key: 42,
      CreatedTime: "2026-01-01T00:00:00Z",
      FullFormattedMessage: "Alarm 'cpu' on web-01 changed from Green to Red",
      Alarm: { Name: "cpu", Alarm: { Type: "Alarm", Value: "alarm-7" } },
      Entity: { Name: "web-01", Entity: { Type: "VirtualMachine", Value: "vm-42" } },
      From: "Green",
      To: "Red",
    };
    expect(normalizeEventData("AlarmStatusChangedEvent", data)).toMatchInlineSnapshot(`
      {
        "alarm": {
          "name": "cpu",
          "type": "Alarm",
          "value": "alarm-7",
        },
        "alarmName": "cpu",
        "createdTime": "2026-01-01T00:00:00.000Z",
        "entity": {
          "name": "web-01",
          "type": "VirtualMachine",
          "value": "vm-42",
        },
        "eventClass": "AlarmStatusChangedEvent",
        "from": "green",
        "key": 42,
        "message": "Alarm 'cpu' on web-01 changed from Green to Red",
        "to": "red",
        "vm": {
          "name": "web-01",
          "type": "VirtualMachine",
          "value": "vm-42",
        },
      }
    `);
    expect(() => normalizeEventData("VmPoweredOffEvent", { CreatedTime: "2026-01-01T00:00:00Z" })).toThrowErrorMatchingInlineSnapshot(`[TypeError: the event has no data.Key]`);
  });

  it("takes a task's entity from its info", () => {
    const data = { Key: 5, Info: { Entity: { Type: "VirtualMachine", Value: "vm-9" }, EntityName: "db-01" } };
    expect(normalizeEventData("TaskEvent", data)).toMatchObject({ entity: { type: "VirtualMachine", value: "vm-9", name: "db-01" }, vm: { type: "VirtualMachine", value: "vm-9", name: "db-01" } });
  });
});
