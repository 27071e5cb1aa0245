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
        "list [all] [glob]",
        "info <vm>",
        "templates",
        "quota",
        "sizes",
        "create <name> [size] [team=@team] [lease=7d]",
        "clone <source-vm> <name> [team=@team] [lease=7d]",
        "deploy <template> <name> [size] [team=@team] [lease=7d]",
        "power on|off|reset|suspend|shutdown|reboot <vm>",
        "resize <vm> [cpu=N] [memory=GB]",
        "delete <vm>",
        "owner <vm> <@user|@team>",
        "snapshot create|list|revert|delete <vm> [name]",
        "lease <vm> [set <duration|date>|none]",
        "extend <vm> [duration] [power=on]",
        "echo [text]",
        "audit [vm]",
        "approvals",
        "remediation pause|resume|status [vc=<vcenter>] [duration] [reason]",
      ]
    `);
  });

  it("remediation: pause takes a duration (1h by default, at most 7d) and a reason; resume and status take nothing", () => {
    const ok = (t: string) => {
      const r = parseCommand(t);
      if (!r.success) throw new Error(r.error.message);
      return r.data;
    };
    expect(ok("remediation pause")).toEqual({ verb: "remediation", action: "pause", durationMs: 3_600_000 });
    expect(ok("remediation PAUSE 30m")).toEqual({ verb: "remediation", action: "pause", durationMs: 30 * 60_000 });
    expect(ok("remediation pause 2h patching esx01")).toEqual({ verb: "remediation", action: "pause", durationMs: 2 * 3_600_000, reason: "patching esx01" });
    expect(ok("remediation pause 7d")).toEqual({ verb: "remediation", action: "pause", durationMs: 7 * 86_400_000 });
    // No duration first: all of it is the reason.
    expect(ok("remediation pause host firmware")).toEqual({ verb: "remediation", action: "pause", durationMs: 3_600_000, reason: "host firmware" });
    expect(ok("remediation resume")).toEqual({ verb: "remediation", action: "resume" });
    expect(ok("remediation status")).toEqual({ verb: "remediation", action: "status" });
    // One vCenter's pause: `vc=` first, its id folded to lower case.
    expect(ok("remediation pause vc=DR-site 2h swap")).toEqual({ verb: "remediation", action: "pause", durationMs: 2 * 3_600_000, reason: "swap", vcenter: "dr-site" });
    expect(ok("remediation pause vc=dr-site")).toEqual({ verb: "remediation", action: "pause", durationMs: 3_600_000, vcenter: "dr-site" });
    expect(ok("remediation resume vc=dr-site")).toEqual({ verb: "remediation", action: "resume", vcenter: "dr-site" });
    const refused = ["remediation", "remediation stop", "remediation pause vc=a_b", "remediation pause vc=", "remediation resume vc=a 1h", "remediation status vc=a", "remediation pause 8d", "remediation pause 0m", "remediation pause 2w", "remediation pause 90", "remediation resume now", "remediation status 1h", `remediation pause 1h ${"x".repeat(301)}`];
    for (const t of refused) {
      const r = parseCommand(t);
      expect(r.success, t).toBe(false);
      if (!r.success) {
        expect(r.error.code, t).toBe("IAAS_SYNTAX");
        expect(r.error.usage, t).toEqual(["remediation pause|resume|status [vc=<vcenter>] [duration] [reason]"]);
      }
    }
    expect(show(parseCommand("remediation pause 8d"))).toMatchObject({ message: "`8d` is too long: a pause lasts at most 7 days (`7d`)." });
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
            "create <name> [size] [team=@team] [lease=7d]",
          ],
        },
        {
          "code": "IAAS_SYNTAX",
          "message": "\`clone web-01\` needs a name for the new VM.",
          "usage": [
            "clone <source-vm> <name> [team=@team] [lease=7d]",
          ],
        },
        {
          "code": "IAAS_SYNTAX",
          "message": "\`deploy tmpl\` needs a name for the new VM.",
          "usage": [
            "deploy <template> <name> [size] [team=@team] [lease=7d]",
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
            "create <name> [size] [team=@team] [lease=7d]",
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
      usage: ["list [all] [glob]"],
    });
  });

  it("new VM names: shape only (the policy's naming rule is applied by the handler)", () => {
    expect(show(parseCommand("create Web_01"))).toEqual({ verb: "create", name: "Web_01" });
    expect(show(parseCommand(`create ${"n".repeat(81)}`))).toMatchInlineSnapshot(`
      {
        "code": "IAAS_NAME_NOT_ALLOWED",
        "message": "\`nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn…\` cannot be used as a VM name (is longer than 80 characters).",
        "usage": [
          "create <name> [size] [team=@team] [lease=7d]",
        ],
      }
    `);
  });

  it("snapshot: create and revert take an optional name (spaces allowed), list none, delete one", () => {
    const ok = (t: string) => {
      const r = parseCommand(t);
      return r.success ? r.data : r.error.message;
    };
    expect(ok("snapshot create web-01")).toEqual({ verb: "snapshot", action: "create", vm: "web-01" });
    expect(ok("snapshot CREATE web-01 before upgrade")).toEqual({ verb: "snapshot", action: "create", vm: "web-01", name: "before upgrade" });
    expect(ok("snapshot list web-01")).toEqual({ verb: "snapshot", action: "list", vm: "web-01" });
    expect(ok("snapshot revert web-01")).toEqual({ verb: "snapshot", action: "revert", vm: "web-01" });
    expect(ok("snapshot revert web-01 s1")).toEqual({ verb: "snapshot", action: "revert", vm: "web-01", name: "s1" });
    expect(ok("snapshot delete web-01 s1")).toEqual({ verb: "snapshot", action: "delete", vm: "web-01", name: "s1" });
    expect(ok("snapshot delete web-01")).toMatch(/needs the name of the snapshot to delete/);
    expect(ok("snapshot list web-01 s1")).toMatch(/takes only the VM/);
    expect(ok("snapshot take web-01")).toMatch(/is not a snapshot action: use create, list, revert or delete/);
    expect(ok("snapshot create")).toMatch(/needs a VM name/);
    expect(ok(`snapshot create web-01 ${"n".repeat(81)}`)).toMatch(/cannot be a snapshot name/);
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

  describe("ownership: owner, team= and list all, as Slack sends mentions with should_escape", () => {
    it("owner <vm> takes a user mention as the owner, a user group mention or a policy team name as the team", () => {
      expect(show(parseCommand("owner web-01 <@U0ALICE|alice>"))).toEqual({ verb: "owner", vm: "web-01", owner: "U0ALICE" });
      expect(show(parseCommand("owner web-01 <@W0ENT>"))).toEqual({ verb: "owner", vm: "web-01", owner: "W0ENT" });
      expect(show(parseCommand("owner /DC0/vm/web-01 <!subteam^S0PLAT|@platform>"))).toEqual({ verb: "owner", vm: "/DC0/vm/web-01", team: "S0PLAT" });
      expect(show(parseCommand("owner web-01 platform"))).toEqual({ verb: "owner", vm: "web-01", team: "platform" });
      // `@platform` that Slack did not turn into a group: a policy team of that name.
      expect(show(parseCommand("owner web-01 @platform"))).toEqual({ verb: "owner", vm: "web-01", team: "platform" });
      // A label with spaces stays one argument.
      expect(show(parseCommand("owner web-01 <!subteam^S0PLAT|@platform team>"))).toEqual({ verb: "owner", vm: "web-01", team: "S0PLAT" });
    });

    it("owner to something that is not a user, a group or a team: a specific error naming the argument", () => {
      const cases = ["<#C0GENERAL|general>", "<!here>", "<!channel>", "<https://example.com|x>", "U0ALICE", "Platform", "<@B0BOT|bot>", "<!subteam^X1|@x>", "@Not_A_Team"];
      for (const text of cases) {
        const r = show(parseCommand(`owner web-01 ${text}`));
        expect(r, text).toMatchObject({ code: "IAAS_INVALID_ARGUMENT", usage: ["owner <vm> <@user|@team>"] });
      }
      expect(show(parseCommand("owner web-01 <#C0GENERAL|general>"))).toMatchInlineSnapshot(`
        {
          "code": "IAAS_INVALID_ARGUMENT",
          "message": "\`&lt;#C0GENERAL|general&gt;\` is not a user or a team: mention a person (\`@alice\`) or a Slack user group (\`@platform\`), or name a team of the policy.",
          "usage": [
            "owner <vm> <@user|@team>",
          ],
        }
      `);
      expect(show(parseCommand("owner web-01 <@B0BOT|bot>"))).toMatchObject({ message: "`&lt;@B0BOT|bot&gt;` is not a Slack user: mention a person as `@name`." });
      expect(show(parseCommand("owner web-01"))).toMatchObject({ code: "IAAS_SYNTAX", message: "`owner web-01` needs a user or a team to give the VM to (`@alice`, `@platform`)." });
      expect(show(parseCommand("owner web-01 <@U0ALICE> <@U0BOB>"))).toMatchObject({ code: "IAAS_SYNTAX" });
    });

    it("team= on create, clone and deploy, after the other arguments", () => {
      expect(show(parseCommand("create web-01 small team=<!subteam^S0PLAT|@platform>"))).toEqual({ verb: "create", name: "web-01", size: "small", team: "S0PLAT" });
      expect(show(parseCommand("create web-01 team=platform"))).toEqual({ verb: "create", name: "web-01", team: "platform" });
      expect(show(parseCommand("create web-01 TEAM=@platform"))).toEqual({ verb: "create", name: "web-01", team: "platform" });
      expect(show(parseCommand("clone web-01 web-02 team=<!subteam^S0PLAT>"))).toEqual({ verb: "clone", source: "web-01", name: "web-02", team: "S0PLAT" });
      expect(show(parseCommand("deploy tmpl app-01 medium team=ops"))).toEqual({ verb: "deploy", template: "tmpl", name: "app-01", size: "medium", team: "ops" });
    });

    it("team= with a user mention, nothing, something else, or twice: refused, naming the argument", () => {
      expect(show(parseCommand("create web-01 team=<@U0BOB|bob>"))).toMatchInlineSnapshot(`
        {
          "code": "IAAS_INVALID_ARGUMENT",
          "message": "\`team=\` takes a team, and \`&lt;@U0BOB|bob&gt;\` is a person: mention a Slack user group (\`team=@platform\`) or name a team of the policy. A VM is yours when you make it; \`/iaas owner\` gives it to someone else.",
          "usage": [
            "create <name> [size] [team=@team] [lease=7d]",
          ],
        }
      `);
      expect(show(parseCommand("create web-01 team="))).toMatchObject({ code: "IAAS_INVALID_ARGUMENT", message: "`team=` needs a team: a Slack user group (`team=@platform`) or a team of the policy." });
      expect(show(parseCommand("create web-01 team=<#C0X|x>"))).toMatchObject({ code: "IAAS_INVALID_ARGUMENT", message: "`team=&lt;#C0X|x&gt;` does not name a team: mention a Slack user group (`team=@platform`) or name a team of the policy." });
      expect(show(parseCommand("create web-01 team=a team=b"))).toMatchObject({ code: "IAAS_SYNTAX", message: "`team=` is given twice." });
      // Only create, clone and deploy take it.
      expect(show(parseCommand("power off web-01 team=a"))).toMatchObject({ code: "IAAS_SYNTAX" });
    });

    it("list all, list all <glob>, and `all` is a keyword, not a pattern", () => {
      expect(show(parseCommand("list all"))).toEqual({ verb: "list", all: true });
      expect(show(parseCommand("list ALL web-*"))).toEqual({ verb: "list", all: true, glob: "web-*" });
      expect(show(parseCommand("list web-*"))).toEqual({ verb: "list", glob: "web-*" });
      expect(show(parseCommand("list all web-* x"))).toMatchObject({ code: "IAAS_SYNTAX", message: "Unexpected `x` after `list all web-*`; `list` takes `all` and one pattern." });
      expect(show(parseCommand("list web-* x"))).toMatchObject({ code: "IAAS_SYNTAX", message: "Unexpected `x` after `list web-*`; `list` takes `all` and one pattern." });
    });
  });
});
