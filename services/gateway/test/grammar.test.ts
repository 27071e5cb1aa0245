import { describe, expect, it } from "vitest";
import { parseCommand, usageOf, Verbs, type ParseResult } from "../src/commands/parse.js";

/** A parse result as data, so inline snapshots show code, message and usage together. */
function show(r: ParseResult) {
  return r.success ? r.data : { code: r.error.code, message: r.error.message, usage: r.error.usage };
}

describe("grammar: the commands beyond power", () => {
  it("usage lines of every command", () => {
    expect(Verbs.map((v) => usageOf(v)[0])).toMatchInlineSnapshot(`
      [
        "help [command]",
        "list [glob]",
        "info <vm>",
        "templates",
        "quota",
        "sizes",
        "create <name> [size]",
        "clone <source-vm> <name>",
        "deploy <template> <name> [size]",
        "power on|off|reset|suspend|shutdown|reboot <vm>",
        "resize <vm> [cpu=N] [memory=GB]",
        "delete <vm>",
        "echo [text]",
        "audit [vm]",
      ]
    `);
  });

  it("queries", () => {
    expect([parseCommand("list"), parseCommand("list web-*"), parseCommand("info /DC0/vm/web-01"), parseCommand("templates"), parseCommand("SIZES")].map(show)).toMatchInlineSnapshot(`
      [
        {
          "verb": "list",
        },
        {
          "glob": "web-*",
          "verb": "list",
        },
        {
          "verb": "info",
          "vm": "/DC0/vm/web-01",
        },
        {
          "verb": "templates",
        },
        {
          "verb": "sizes",
        },
      ]
    `);
  });

  it("create, clone, deploy with and without a size", () => {
    expect([parseCommand("create web-01"), parseCommand("create web-01 Large"), parseCommand("clone web-01 web-02"), parseCommand("deploy\ntmpl-ubuntu-22.04\napp-01"), parseCommand("deploy tmpl app-01 medium")].map(show)).toMatchInlineSnapshot(`
      [
        {
          "name": "web-01",
          "verb": "create",
        },
        {
          "name": "web-01",
          "size": "Large",
          "verb": "create",
        },
        {
          "name": "web-02",
          "source": "web-01",
          "verb": "clone",
        },
        {
          "name": "app-01",
          "template": "tmpl-ubuntu-22.04",
          "verb": "deploy",
        },
        {
          "name": "app-01",
          "size": "medium",
          "template": "tmpl",
          "verb": "deploy",
        },
      ]
    `);
  });

  it("resize: absolute targets in any order; memory in GB, with or without the unit", () => {
    expect([parseCommand("resize web-01 cpu=4"), parseCommand("resize web-01 memory=8"), parseCommand("resize web-01 MEMORY=0.5GB CPU=2"), parseCommand("resize web-01 mem=16g")].map(show)).toMatchInlineSnapshot(`
      [
        {
          "cpu": 4,
          "verb": "resize",
          "vm": "web-01",
        },
        {
          "memoryGB": 8,
          "verb": "resize",
          "vm": "web-01",
        },
        {
          "cpu": 2,
          "memoryGB": 0.5,
          "verb": "resize",
          "vm": "web-01",
        },
        {
          "memoryGB": 16,
          "verb": "resize",
          "vm": "web-01",
        },
      ]
    `);
  });

  it("resize: what is refused, with the usage", () => {
    expect(["resize web-01", "resize web-01 cpu=0", "resize web-01 cpu=two", "resize web-01 cpu=2 cpu=3", "resize web-01 memory=512MB", "resize web-01 disk=40", "resize web-01 4"].map((t) => show(parseCommand(t)))).toMatchInlineSnapshot(`
      [
        {
          "code": "IAAS_SYNTAX",
          "message": "\`resize web-01\` needs \`cpu=N\`, \`memory=GB\` or both.",
          "usage": [
            "resize <vm> [cpu=N] [memory=GB]",
          ],
        },
        {
          "code": "IAAS_SYNTAX",
          "message": "\`cpu=0\`: the number of vCPUs must be a whole number of at least 1, for example \`cpu=2\`.",
          "usage": [
            "resize <vm> [cpu=N] [memory=GB]",
          ],
        },
        {
          "code": "IAAS_SYNTAX",
          "message": "\`cpu=two\`: the number of vCPUs must be a whole number of at least 1, for example \`cpu=2\`.",
          "usage": [
            "resize <vm> [cpu=N] [memory=GB]",
          ],
        },
        {
          "code": "IAAS_SYNTAX",
          "message": "\`cpu=\` is given twice.",
          "usage": [
            "resize <vm> [cpu=N] [memory=GB]",
          ],
        },
        {
          "code": "IAAS_SYNTAX",
          "message": "\`memory=512MB\`: memory is in GB, for example \`memory=8\` or \`memory=0.5\`.",
          "usage": [
            "resize <vm> [cpu=N] [memory=GB]",
          ],
        },
        {
          "code": "IAAS_SYNTAX",
          "message": "\`disk=40\` is not a resize option: use \`cpu=N\` and/or \`memory=GB\`.",
          "usage": [
            "resize <vm> [cpu=N] [memory=GB]",
          ],
        },
        {
          "code": "IAAS_SYNTAX",
          "message": "\`4\` is not a resize option: use \`cpu=N\` and/or \`memory=GB\`.",
          "usage": [
            "resize <vm> [cpu=N] [memory=GB]",
          ],
        },
      ]
    `);
  });

  it("missing and extra arguments name the command's usage", () => {
    expect(["create", "clone web-01", "deploy tmpl", "delete", "info", "delete a b", "create a small extra", "templates now"].map((t) => show(parseCommand(t)))).toMatchInlineSnapshot(`
      [
        {
          "code": "IAAS_SYNTAX",
          "message": "\`create\` needs a name for the new VM.",
          "usage": [
            "create <name> [size]",
          ],
        },
        {
          "code": "IAAS_SYNTAX",
          "message": "\`clone web-01\` needs a name for the new VM.",
          "usage": [
            "clone <source-vm> <name>",
          ],
        },
        {
          "code": "IAAS_SYNTAX",
          "message": "\`deploy tmpl\` needs a name for the new VM.",
          "usage": [
            "deploy <template> <name> [size]",
          ],
        },
        {
          "code": "IAAS_SYNTAX",
          "message": "\`delete\` needs a VM name.",
          "usage": [
            "delete <vm>",
          ],
        },
        {
          "code": "IAAS_SYNTAX",
          "message": "\`info\` needs a VM name.",
          "usage": [
            "info <vm>",
          ],
        },
        {
          "code": "IAAS_SYNTAX",
          "message": "Unexpected \`b\` after \`delete a\`; VM names cannot contain spaces.",
          "usage": [
            "delete <vm>",
          ],
        },
        {
          "code": "IAAS_SYNTAX",
          "message": "Unexpected \`extra\` after \`create a small\`; see \`/iaas sizes\`.",
          "usage": [
            "create <name> [size]",
          ],
        },
        {
          "code": "IAAS_SYNTAX",
          "message": "Unexpected \`now\` after \`templates\`.",
          "usage": [
            "templates",
          ],
        },
      ]
    `);
  });

  it("wildcards are refused wherever a VM is named; list is the one place a pattern is a filter", () => {
    for (const t of ["info web-*", "delete web-?", "clone web-[12] x", "deploy tmpl* x", "resize * cpu=2", "audit web-*"]) {
      expect(show(parseCommand(t)), t).toMatchObject({ code: "IAAS_BAD_VM_NAME" });
    }
    expect(show(parseCommand("list *-db"))).toEqual({ verb: "list", glob: "*-db" });
  });

  it("a list pattern is capped: the work of matching it grows with its length", () => {
    expect(show(parseCommand(`list ${"*a".repeat(50)}`))).toEqual({ verb: "list", glob: "*a".repeat(50) });
    expect(show(parseCommand(`list ${"*a".repeat(50)}b`))).toEqual({
      code: "IAAS_SYNTAX",
      message: "That pattern is 101 characters long; a pattern may have at most 100 (VM names have at most 80).",
      usage: ["list [glob]"],
    });
  });

  it("new VM names: shape only (the policy's naming rule is applied by the handler)", () => {
    expect(show(parseCommand("create Web_01"))).toEqual({ verb: "create", name: "Web_01" });
    expect(show(parseCommand(`create ${"n".repeat(81)}`))).toMatchInlineSnapshot(`
      {
        "code": "IAAS_NAME_NOT_ALLOWED",
        "message": "\`nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn…\` cannot be used as a VM name (is longer than 80 characters).",
        "usage": [
          "create <name> [size]",
        ],
      }
    `);
  });

  it("echo takes the rest of the text; audit takes an optional VM", () => {
    expect([parseCommand("echo"), parseCommand("echo power  off\nweb-01"), parseCommand("audit"), parseCommand("audit web-01")].map(show)).toMatchInlineSnapshot(`
      [
        {
          "verb": "echo",
        },
        {
          "text": "power off web-01",
          "verb": "echo",
        },
        {
          "verb": "audit",
        },
        {
          "verb": "audit",
          "vm": "web-01",
        },
      ]
    `);
  });

  it("unicode: names are taken as typed (exact match later); ideographic spaces separate arguments", () => {
    expect(show(parseCommand("info ｗｅｂ-01"))).toEqual({ verb: "info", vm: "ｗｅｂ-01" });
    expect(show(parseCommand("info\u3000web-01"))).toEqual({ verb: "info", vm: "web-01" });
    expect(show(parseCommand("info web\u0007"))).toMatchObject({ code: "IAAS_BAD_VM_NAME" });
  });

  it("an over-long command is refused before it is read", () => {
    expect(show(parseCommand(`echo ${"x".repeat(2000)}`))).toMatchInlineSnapshot(`
      {
        "code": "IAAS_SYNTAX",
        "message": "That command is 2005 characters long; a command may have at most 2000.",
        "usage": [],
      }
    `);
  });
});
