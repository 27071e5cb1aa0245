import { describe, expect, it } from "vitest";
import { CommandAreas } from "@iaas/contracts";
import { commandIdFor } from "../src/commands/ids.js";
import { parseCommand, tokenize, usageOf, type ParseResult } from "../src/commands/parse.js";

/** A parse result as data, so inline snapshots show code, message and usage together. */
function show(r: ParseResult) {
  return r.success ? r.data : { code: r.error.code, message: r.error.message, usage: r.error.usage };
}

describe("parseCommand: success", () => {
  it("power <action> <vm>", () => {
    expect(show(parseCommand("power off web-01"))).toMatchInlineSnapshot(`
      {
        "action": "off",
        "verb": "power",
        "vm": "web-01",
      }
    `);
  });

  it("every power action the contract knows", () => {
    for (const action of CommandAreas.power) {
      expect(show(parseCommand(`power ${action} web-01`))).toEqual({ verb: "power", action, vm: "web-01" });
    }
  });

  it("an inventory path", () => {
    expect(show(parseCommand("power on /DC0/vm/web-01"))).toMatchInlineSnapshot(`
      {
        "action": "on",
        "verb": "power",
        "vm": "/DC0/vm/web-01",
      }
    `);
  });

  it("arguments separated by newlines, tabs and repeated spaces; keywords in any case, VM names exact", () => {
    expect(show(parseCommand("  Power\nRESET \t  Web-01\n"))).toMatchInlineSnapshot(`
      {
        "action": "reset",
        "verb": "power",
        "vm": "Web-01",
      }
    `);
  });

  it("Slack's HTML escaping is undone in arguments", () => {
    expect(show(parseCommand("power off a&amp;b&lt;c&gt;"))).toEqual({ verb: "power", action: "off", vm: "a&b<c>" });
  });

  it("help, help <command>, and empty text as help", () => {
    expect(show(parseCommand("help"))).toMatchInlineSnapshot(`
      {
        "verb": "help",
      }
    `);
    expect(show(parseCommand("help power"))).toMatchInlineSnapshot(`
      {
        "topic": "power",
        "verb": "help",
      }
    `);
    expect(show(parseCommand("   "))).toEqual({ verb: "help" });
  });
});

describe("parseCommand: failure", () => {
  it("an unknown verb points to help, with no usage", () => {
    expect(show(parseCommand("start web-01"))).toMatchInlineSnapshot(`
      {
        "code": "IAAS_UNKNOWN_COMMAND",
        "message": "Unknown command \`start\`. Run \`/iaas help\` to see the commands.",
        "usage": [],
      }
    `);
  });

  it("no prefix or substring routing: pow, poweroff, powers", () => {
    for (const text of ["pow off x", "poweroff x", "powers off x", "p off x", "xpower off x"]) {
      const r = parseCommand(text);
      expect(r.success, text).toBe(false);
      if (!r.success) expect(r.error.code, text).toBe("IAAS_UNKNOWN_COMMAND");
    }
    expect(show(parseCommand("pow off x"))).toMatchInlineSnapshot(`
      {
        "code": "IAAS_UNKNOWN_COMMAND",
        "message": "Unknown command \`pow\`. Run \`/iaas help\` to see the commands.",
        "usage": [],
      }
    `);
  });

  it("an unknown power action, with the usage", () => {
    expect(show(parseCommand("power of x"))).toMatchInlineSnapshot(`
      {
        "code": "IAAS_SYNTAX",
        "message": "\`of\` is not a power action: use on, off, reset, suspend, shutdown or reboot.",
        "usage": [
          "power on|off|reset|suspend|shutdown|reboot <vm>",
        ],
      }
    `);
    // No prefix matching inside a command either.
    expect(parseCommand("power of").success).toBe(false);
    expect(parseCommand("power offf x").success).toBe(false);
  });

  it("a wildcard is not a VM name", () => {
    expect(show(parseCommand("power off web-*"))).toMatchInlineSnapshot(`
      {
        "code": "IAAS_BAD_VM_NAME",
        "message": "\`web-*\` is not a valid VM name (must be an exact VM name or an inventory path: wildcards and control characters are not allowed).",
        "usage": [
          "power on|off|reset|suspend|shutdown|reboot <vm>",
        ],
      }
    `);
    for (const vm of ["web-?", "web-[12]", "*"]) {
      const r = parseCommand(`power off ${vm}`);
      expect(r.success ? undefined : r.error.code, vm).toBe("IAAS_BAD_VM_NAME");
    }
  });

  it("missing arguments name what is missing", () => {
    expect(show(parseCommand("power"))).toMatchInlineSnapshot(`
      {
        "code": "IAAS_SYNTAX",
        "message": "\`power\` needs a power action (on, off, reset, suspend, shutdown or reboot).",
        "usage": [
          "power on|off|reset|suspend|shutdown|reboot <vm>",
        ],
      }
    `);
    expect(show(parseCommand("power off"))).toMatchInlineSnapshot(`
      {
        "code": "IAAS_SYNTAX",
        "message": "\`power off\` needs a VM name.",
        "usage": [
          "power on|off|reset|suspend|shutdown|reboot <vm>",
        ],
      }
    `);
  });

  it("extra arguments are refused, not ignored", () => {
    expect(show(parseCommand("power off web 01"))).toMatchInlineSnapshot(`
      {
        "code": "IAAS_SYNTAX",
        "message": "Unexpected \`01\` after \`power off web\`; VM names cannot contain spaces.",
        "usage": [
          "power on|off|reset|suspend|shutdown|reboot <vm>",
        ],
      }
    `);
    expect(show(parseCommand("help power now"))).toMatchInlineSnapshot(`
      {
        "code": "IAAS_SYNTAX",
        "message": "Unexpected \`now\` after \`help power\`.",
        "usage": [
          "help [command]",
        ],
      }
    `);
  });

  it("help for an unknown command", () => {
    expect(show(parseCommand("help pow"))).toMatchInlineSnapshot(`
      {
        "code": "IAAS_UNKNOWN_COMMAND",
        "message": "There is no command \`pow\`. Run \`/iaas help\` to see the commands.",
        "usage": [
          "help [command]",
        ],
      }
    `);
  });

  it("user text in messages cannot become a mention, a link or break out of code", () => {
    expect(show(parseCommand("<!channel>"))).toMatchInlineSnapshot(`
      {
        "code": "IAAS_UNKNOWN_COMMAND",
        "message": "Unknown command \`&lt;!channel&gt;\`. Run \`/iaas help\` to see the commands.",
        "usage": [],
      }
    `);
    expect(show(parseCommand("power o`ff x"))).toMatchObject({ message: "`o'ff` is not a power action: use on, off, reset, suspend, shutdown or reboot." });
  });
});

describe("grammar table", () => {
  it("derives usage lines", () => {
    expect(usageOf("power")).toEqual(["power on|off|reset|suspend|shutdown|reboot <vm>"]);
    expect(usageOf("help")).toEqual(["help [command]"]);
  });

  it("tokenizes on any whitespace", () => {
    expect(tokenize("a\u00a0b\r\nc\t d")).toEqual(["a", "b", "c", "d"]);
  });
});

describe("commandIdFor", () => {
  it("is stable for one Slack request and differs between requests", () => {
    const a = commandIdFor("T0TEAM", "123.456.abc");
    expect(a).toMatch(/^r-[a-z2-7]{24}$/);
    expect(commandIdFor("T0TEAM", "123.456.abc")).toBe(a);
    expect(commandIdFor("T0TEAM", "123.456.abd")).not.toBe(a);
    expect(commandIdFor("T0OTHER", "123.456.abc")).not.toBe(a);
  });
});
