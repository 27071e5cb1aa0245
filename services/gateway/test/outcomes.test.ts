import { describe, expect, it } from "vitest";
import { formatMemory, quote, type Notice, type Result, type VmInfo, type VmSummary } from "@iaas/contracts";
import { code, escape, escapeKeepingMentions } from "../src/presentation/mrkdwn.js";
import { noticeMessage, resultMessage } from "../src/presentation/outcomes.js";
import { auditMessage, infoMessage, listMessage, templatesMessage } from "../src/presentation/views.js";

const HOSTILE = "zz` <!channel> <https://evil.example/login|Re-authenticate> `zz";
// What Slack would act on: a special mention, a user or channel mention, a link with a label.
const LIVE = /<[!@#]|<https?:|<mailto:/i;
const at = "2026-12-07T09:00:00.000Z";
const everything = (m: { text: string; blocks?: unknown }) => JSON.stringify({ text: m.text, blocks: m.blocks });

describe("the mrkdwn escaper", () => {
  it("escapes &, < and > and nothing else", () => {
    expect(escape("a & b <!here> <@U1> <https://x|y> c > d *e* _f_")).toBe("a &amp; b &lt;!here&gt; &lt;@U1&gt; &lt;https://x|y&gt; c &gt; d *e* _f_");
    expect(escape("&amp;")).toBe("&amp;amp;");
    expect(escape("")).toBe("");
  });

  it("makes inline code that a backtick cannot end", () => {
    expect(code(HOSTILE)).toBe("`zz' &lt;!channel&gt; &lt;https://evil.example/login|Re-authenticate&gt; 'zz`");
    expect(code(HOSTILE)).not.toMatch(LIVE);
  });
});

describe("mentions the gateway writes itself", () => {
  it("a user or group mention with a well-formed id stays a mention outside inline code; everything else is text", () => {
    expect(escapeKeepingMentions("`web-01` belongs to <@UALICE> (<!subteam^S0PLAT>); ask them")).toBe("`web-01` belongs to <@UALICE> (<!subteam^S0PLAT>); ask them");
    // Inside backticks (a name someone typed or chose), a special mention, a link, a malformed id: text.
    const hostile = "`<@U0EVIL>` <!channel> <!here> <https://evil.example|x> <@u0lower> <!subteam^S0X|@x> <#C0GEN>";
    expect(escapeKeepingMentions(hostile)).toBe("`&lt;@U0EVIL&gt;` &lt;!channel&gt; &lt;!here&gt; &lt;https://evil.example|x&gt; &lt;@u0lower&gt; &lt;!subteam^S0X|@x&gt; &lt;#C0GEN&gt;");
  });

  it("a result's message: the owner stays a mention, a hostile VM name does not become one", () => {
    const r: Result = { id: "r-1", status: "failed", command: "power.off", error: { code: "IAAS_NOT_ALLOWED", message: `\`${HOSTILE}\` belongs to <@UALICE>; you may not power it off: ask them or an IT admin.`, retryable: false }, at };
    const m = resultMessage(r, "power off x");
    expect(m.text).toContain("belongs to <@UALICE>;");
    expect(m.text.replace("<@UALICE>", "")).not.toMatch(LIVE);
  });
});

describe("the shared words", () => {
  it("memory: GB from 1 GB up in quarter steps, MB otherwise", () => {
    expect([512, 1000, 1024, 1100, 1280, 1536, 4096, 2560].map(formatMemory)).toEqual(["512 MB", "1000 MB", "1 GB", "1100 MB", "1.25 GB", "1.5 GB", "4 GB", "2.5 GB"]);
  });
  it("plain quoting keeps the name and turns its backticks into quotes", () => {
    expect(quote(HOSTILE)).toBe("`zz' <!channel> <https://evil.example/login|Re-authenticate> 'zz`");
  });
});

const vm: VmSummary = { name: HOSTILE, moref: "vm-9", powerState: "poweredOn", numCpu: 2, memoryMB: 1536, template: false };

describe("results", () => {
  it("a success: the plain message escaped, the VM's facts under it", () => {
    const r: Result = { id: "r-abcdefgh", status: "succeeded", command: "power.on", message: `${quote(vm.name)} is powered on (2 vCPU, 1.5 GB memory, powered on).`, facts: { code: "done", vm: vm.name }, vm, at };
    const m = resultMessage(r, "power on x");
    expect(everything(m)).not.toMatch(LIVE);
    expect(m.text).toBe(
      ":white_check_mark: `zz' &lt;!channel&gt; &lt;https://evil.example/login|Re-authenticate&gt; 'zz` is powered on (2 vCPU, 1.5 GB memory, powered on). (request `r-abcdefgh`)\n`zz' &lt;!channel&gt; &lt;https://evil.example/login|Re-authenticate&gt; 'zz`: powered on · 2 vCPU · 1.5 GB memory",
    );
    expect(m.blocks).toHaveLength(2);
    expect(m).toMatchObject({ response_type: "ephemeral", replace_original: false });
  });

  it("progress and failure: the message, the source and the error text escaped", () => {
    const p: Result = { id: "r-abcdefgh", status: "progress", command: "vm.clone", message: `Cloning ${quote(HOSTILE)} to ${quote("b")}…`, facts: { code: "working", vm: "b", source: HOSTILE }, at };
    expect(everything(resultMessage(p, "clone x b"))).not.toMatch(LIVE);
    const f: Result = { id: "r-abcdefgh", status: "failed", command: "vm.delete", error: { code: "IAAS_VM_NOT_FOUND", message: `No VM named ${HOSTILE}.`, retryable: false }, at };
    const m = resultMessage(f, `delete <!here>`);
    expect(everything(m)).not.toMatch(LIVE);
    expect(m.text).toContain("No VM named zz` &lt;!channel&gt;");
  });
});

describe("notices", () => {
  const notice: Notice = {
    id: "rem-cpu-0123456789",
    kind: "remediation.skip",
    severity: "info",
    text: `Not resizing anything for alarm \`<!here>\`: it fired on <!here> ${quote(HOSTILE)}, not on a VM.`,
    vm: HOSTILE,
    datastore: "<!channel>",
    cause: "https://vc/sdk#1",
    rule: "cpu",
    decision: "skipped",
    reason: "wrong-entity",
    alarm: "<!here>",
    change: { cpu: { from: 2, to: 3 }, memoryMB: { from: 1536, to: 3584 }, datastore: { from: "<!here>", to: "ds" } },
    dryRun: true,
    at,
  };
  it("every text and fact from outside is escaped, in the text and the blocks", () => {
    const m = noticeMessage(notice);
    expect(everything(m)).not.toMatch(LIVE);
    expect(m.text).toBe(":information_source: [dry run] Not resizing anything for alarm `&lt;!here&gt;`: it fired on &lt;!here&gt; `zz' &lt;!channel&gt; &lt;https://evil.example/login|Re-authenticate&gt; 'zz`, not on a VM.");
  });
  it("the facts line says the decision, the change and the cause", () => {
    const facts = JSON.stringify(noticeMessage({ ...notice, vm: "web-01", datastore: undefined, alarm: "VM CPU Usage", change: { cpu: { from: 2, to: 3 } } }).blocks[1]);
    expect(facts).toContain("VM `web-01` · alarm `VM CPU Usage` · 2 → 3 vCPU · cause: `https://vc/sdk#1` · remediation.skip (skipped: wrong-entity)");
  });
  it("a notice about another vCenter than the default one names it among the facts", () => {
    const facts = JSON.stringify(noticeMessage({ ...notice, vm: "web-01", datastore: undefined, vcenter: "dr-site", alarm: "VM CPU Usage", change: undefined }).blocks[1]);
    expect(facts).toContain("VM `web-01` · vCenter `dr-site` · alarm `VM CPU Usage`");
  });
});

describe("info says what vSphere's enums mean", () => {
  it("VMware Tools in words; a value it does not know as vSphere says it, escaped", () => {
    const base: VmInfo = { ...vm, datastores: [], disks: [], cpuHotAddEnabled: false, memoryHotAddEnabled: false };
    const tools = (toolsStatus: string) => JSON.stringify(infoMessage({ ...base, toolsStatus }).blocks);
    expect(tools("guestToolsRunning")).toContain("running");
    expect(tools("guestToolsRunning")).not.toContain("guestToolsRunning");
    expect(tools("guestToolsNotRunning")).toContain("not running");
    expect(tools("<!here>")).not.toMatch(LIVE);
  });
});

describe("query answers escape vCenter's names in the fallback text too", () => {
  it("list, info, templates, audit", () => {
    expect(everything(listMessage([vm], undefined))).not.toMatch(LIVE);
    const info: VmInfo = { ...vm, datastores: ["<!here>"], disks: [], cpuHotAddEnabled: false, memoryHotAddEnabled: false, ipAddress: "<!channel>", guestOs: "<!here>" };
    expect(everything(infoMessage(info))).not.toMatch(LIVE);
    expect(everything(templatesMessage([{ name: HOSTILE, moref: "vm-1", numCpu: 1, memoryMB: 512, guestOs: "<!here>" } as never]))).not.toMatch(LIVE);
    const audit = auditMessage(
      [
        { kind: "command", record: { kind: "command", id: "r-abcdefgh", actor: { userId: "U0001", via: "slack" }, command: "vm.delete", vm: HOSTILE, outcome: "succeeded", message: HOSTILE, at } },
        { kind: "other", record: { kind: "remediation", rule: "cpu", decision: "skipped", reason: "wrong-entity", vm: HOSTILE, message: HOSTILE, at } as never },
      ],
      HOSTILE,
      2,
    );
    // The answer's own date token and the mention of the (verified) actor are the ones Slack should read.
    expect(everything(audit).replace(/<!date\^[^>]*>|<@U0001>/g, "")).not.toMatch(LIVE);
  });
});
