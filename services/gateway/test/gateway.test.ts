import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Subjects, type Result } from "@iaas/contracts";
import { openBucket } from "@iaas/runtime";
import { SlackStandIn, postSigned, slashCommandBody, signedHeaders } from "@iaas/testkit";
import { commandIdFor } from "../src/commands/ids.js";
import { SECRET, startHarness, type Harness } from "./harness.js";

const ID = /\(request `(r-[a-z2-7]{24})`\)/;

function requestIdOf(ack: unknown): string {
  const text = (ack as { text?: string }).text ?? "";
  const m = ID.exec(text);
  if (!m?.[1]) throw new Error(`no request id in ack: ${text}`);
  return m[1];
}

function now(): string {
  return new Date().toISOString();
}

describe("gateway over HTTP, with a real nats-server and the Slack stand-in", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  describe("power off web-01", () => {
    let id: string;
    let responseUrl: string;

    it("acks with the command and its request id, stores the reply target, publishes one PowerCommand", async () => {
      const before = await h.lastCommandSeq();
      const r = await h.slash("power off web-01");
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ response_type: "ephemeral" });
      expect((r.json as { text: string }).text).toMatch(/^Powering off `web-01`… \(request `r-[a-z2-7]{24}`\)$/);
      id = requestIdOf(r.json);
      responseUrl = r.responseUrl;

      // Published before the ack, so it is there now.
      const cmds = (await h.commands(before)).filter((c) => c.body.id === id);
      expect(cmds).toHaveLength(1);
      expect(cmds[0]).toMatchObject({
        subject: "iaas.cmd.power.off",
        msgId: id,
        body: { id, area: "power", action: "off", vm: "web-01", actor: { userId: "U0ALICE", teamId: "T0TEAM", channelId: "C0OPS", via: "slack" } },
      });

      const kv = await openBucket(h.nc, "requests");
      const stored = await kv.get(id);
      expect(stored?.json()).toMatchObject({ id, responseUrl, channelId: "C0OPS", userId: "U0ALICE", teamId: "T0TEAM", text: "power off web-01", posts: 0, finalDelivered: false });
    });

    it("relays a success result to the response_url, once, naming the VM and its facts", async () => {
      const result: Result = {
        id,
        status: "succeeded",
        command: "power.off",
        message: "web-01 is powered off.",
        vm: { name: "web-01", moref: "vm-42", powerState: "poweredOff", numCpu: 2, memoryMB: 4096, template: false },
        at: now(),
      };
      const seq = await h.publishResult(result);
      await h.slack.waitFor((calls) => calls.some((c) => c.path === new URL(responseUrl).pathname));
      await h.resultsAckedThrough(seq);
      const posts = h.slack.postsTo(responseUrl);
      expect(posts).toHaveLength(1);
      expect(posts[0]?.body).toMatchObject({ response_type: "ephemeral", replace_original: false });
      expect(posts[0]?.body.text).toMatchInlineSnapshot(`
        ":white_check_mark: web-01 is powered off. (request \`${id}\`)
        \`web-01\`: powered off · 2 vCPU · 4 GB memory"
      `);
    });

    it("does not post a redelivered final result twice", async () => {
      const seq = await h.publishResult({ id, status: "succeeded", command: "power.off", message: "web-01 is powered off.", at: now() });
      await h.resultsAckedThrough(seq);
      expect(h.slack.postsTo(responseUrl)).toHaveLength(1);
    });
  });

  it("relays a failure with the reason and the request id, never internals", async () => {
    const r = await h.slash("power on db-07");
    const id = requestIdOf(r.json);
    const seq = await h.publishResult({
      id,
      status: "failed",
      command: "power.on",
      error: { code: "IAAS_VM_NOT_FOUND", message: "No VM named db-07.", retryable: false },
      at: now(),
    });
    await h.resultsAckedThrough(seq);
    const posts = h.slack.postsTo(r.responseUrl);
    expect(posts).toHaveLength(1);
    expect(posts[0]?.body.response_type).toBe("ephemeral");
    expect(posts[0]?.body.text).toBe(`:x: \`/iaas power on db-07\` failed: No VM named db-07. (request \`${id}\`)`);
  });

  it("replaces a stack trace or an internal error with the catalogue's words", async () => {
    const a = await h.slash("power reset app-1");
    const b = await h.slash("power reset app-2");
    const idA = requestIdOf(a.json);
    const idB = requestIdOf(b.json);
    await h.publishResult({ id: idA, status: "failed", command: "power.reset", error: { code: "IAAS_VCENTER_FAULT", message: "TypeError: x is undefined\n    at Object.<anonymous> (/srv/app/dist/x.js:10:5)", retryable: false }, at: now() });
    const seq = await h.publishResult({ id: idB, status: "failed", command: "power.reset", error: { code: "IAAS_INTERNAL", message: "connect ECONNREFUSED 10.0.0.5:443 password=hunter2", retryable: false }, at: now() });
    await h.resultsAckedThrough(seq);
    expect(h.slack.postsTo(a.responseUrl)[0]?.body.text).toBe(`:x: \`/iaas power reset app-1\` failed: vCenter reported an error. (request \`${idA}\`)`);
    expect(h.slack.postsTo(b.responseUrl)[0]?.body.text).toBe(`:x: \`/iaas power reset app-2\` failed: Something went wrong on our side. (request \`${idB}\`)`);
  });

  it("posts progress before the final result, in order", async () => {
    const r = await h.slash("power shutdown web-02");
    const id = requestIdOf(r.json);
    await h.publishResult({ id, status: "progress", command: "power.shutdown", message: "Waiting for the guest to shut down…", at: now() });
    const seq = await h.publishResult({ id, status: "failed", command: "power.shutdown", error: { code: "IAAS_TIMEOUT", message: "The guest did not shut down within 5 minutes.", retryable: true }, at: now() });
    await h.resultsAckedThrough(seq);
    expect(h.slack.postsTo(r.responseUrl).map((c) => c.body.text)).toEqual([
      `:hourglass_flowing_sand: Waiting for the guest to shut down… (request \`${id}\`)`,
      `:x: \`/iaas power shutdown web-02\` failed: The guest did not shut down within 5 minutes. This may be temporary: try again in a minute. (request \`${id}\`)`,
    ]);
  });

  it("acks a result for an unknown request and posts nothing", async () => {
    const calls = h.slack.calls.length;
    const seq = await h.publishResult({ id: `op-${randomUUID().slice(0, 12)}`, status: "succeeded", command: "power.on", message: "done", at: now() });
    await h.resultsAckedThrough(seq);
    expect(h.slack.calls.length).toBe(calls);
  });

  it("drops a malformed result and keeps going", async () => {
    const calls = h.slack.calls.length;
    const bad = await h.jet.js.publish(Subjects.result("r-notjson000"), new TextEncoder().encode("{not json"));
    await h.resultsAckedThrough(bad.seq);
    const mismatched = await h.jet.js.publish(Subjects.result("r-other00000"), new TextEncoder().encode(JSON.stringify({ id: "r-different0", status: "progress", command: "power.on", message: "x", at: now() })));
    await h.resultsAckedThrough(mismatched.seq);
    expect(h.slack.calls.length).toBe(calls);
  });

  it("a signed body that is not an object (payload=null, payload=1, payload=[]) gets 400 and the gateway keeps serving", async () => {
    // Bolt 5.1 alone throws on these inside its request handler, which ends the process.
    for (const body of ["payload=null", "payload=1", "payload=%5B%5D"]) {
      expect((await postSigned(h.url, body, { secret: SECRET })).status).toBe(400);
    }
    const r = await postSigned(h.url, slashCommandBody({ text: "help", response_url: h.slack.responseUrl() }), { secret: SECRET });
    expect(r.status).toBe(200);
  });

  describe("requests that are not Slack's get 401 and publish nothing", () => {
    it("a bad signature", async () => {
      const leaked = await h.publishedBy(async () => {
        const body = slashCommandBody({ text: "power off web-01", response_url: h.slack.responseUrl() });
        const r = await postSigned(h.url, body, { secret: "not-the-secret" });
        expect(r.status).toBe(401);
      });
      expect(leaked).toEqual([]);
    });

    it("a timestamp 6 minutes old", async () => {
      const leaked = await h.publishedBy(async () => {
        const body = slashCommandBody({ text: "power off web-01", response_url: h.slack.responseUrl() });
        const r = await postSigned(h.url, body, { secret: SECRET, timestamp: Math.floor(Date.now() / 1000) - 6 * 60 });
        expect(r.status).toBe(401);
      });
      expect(leaked).toEqual([]);
    });

    it("a timestamp 6 minutes in the future (Bolt alone takes it)", async () => {
      const leaked = await h.publishedBy(async () => {
        const body = slashCommandBody({ text: "power off web-01", response_url: h.slack.responseUrl() });
        const r = await postSigned(h.url, body, { secret: SECRET, timestamp: Math.floor(Date.now() / 1000) + 6 * 60 });
        expect(r.status).toBe(401);
      });
      expect(leaked).toEqual([]);
      // Within the window either way is still Slack's.
      const body = slashCommandBody({ text: "help", response_url: h.slack.responseUrl() });
      expect((await postSigned(h.url, body, { secret: SECRET, timestamp: Math.floor(Date.now() / 1000) + 60 })).status).toBe(200);
    });

    it("missing signature headers", async () => {
      const leaked = await h.publishedBy(async () => {
        const body = slashCommandBody({ text: "power off web-01", response_url: h.slack.responseUrl() });
        expect((await postSigned(h.url, body, { secret: SECRET, unsigned: true })).status).toBe(401);
        const onlyTimestamp = signedHeaders(SECRET, body)["x-slack-request-timestamp"]!;
        expect((await postSigned(h.url, body, { secret: SECRET, unsigned: true, headers: { "x-slack-request-timestamp": onlyTimestamp } })).status).toBe(401);
      });
      expect(leaked).toEqual([]);
    });

    it("a body changed after signing", async () => {
      const leaked = await h.publishedBy(async () => {
        const body = slashCommandBody({ text: "power on web-01", response_url: h.slack.responseUrl() });
        const headers = signedHeaders(SECRET, body);
        const r = await postSigned(h.url, body.replace("power+on", "power+off"), { secret: SECRET, unsigned: true, headers });
        expect(r.status).toBe(401);
      });
      expect(leaked).toEqual([]);
    });
  });

  describe("immediate errors name the problem and publish nothing", () => {
    // `{id}`: the request id, from the request's team and trigger ids.
    const cases: [string, string][] = [
      ["reboot web-01", ":warning: Unknown command `reboot`. Run `/iaas help` to see the commands. (request `{id}`)"],
      ["pow off x", ":warning: Unknown command `pow`. Run `/iaas help` to see the commands. (request `{id}`)"],
      ["poweroff x", ":warning: Unknown command `poweroff`. Run `/iaas help` to see the commands. (request `{id}`)"],
      ["power of x", ":warning: `of` is not a power action: use on, off, reset, suspend, shutdown or reboot. (request `{id}`)\nUsage: `/iaas power on|off|reset|suspend|shutdown|reboot &lt;vm&gt;`"],
      [
        "power off web-*",
        ":warning: `web-*` is not a valid VM name (must be an exact VM name or an inventory path: wildcards and control characters are not allowed). (request `{id}`)\nUsage: `/iaas power on|off|reset|suspend|shutdown|reboot &lt;vm&gt;`",
      ],
      ["power off", ":warning: `power off` needs a VM name. (request `{id}`)\nUsage: `/iaas power on|off|reset|suspend|shutdown|reboot &lt;vm&gt;`"],
    ];
    for (const [text, expected] of cases) {
      it(`/iaas ${text}`, async () => {
        const leaked = await h.publishedBy(async () => {
          const r = await h.slash(text);
          expect(r.status).toBe(200);
          expect(r.json).toEqual({ response_type: "ephemeral", text: expected.replace("{id}", commandIdFor("T0TEAM", r.triggerId)) });
        });
        expect(leaked).toEqual([]);
      });
    }
  });

  it("a text longer than the payload's bound (40 000) is refused as too long, not as a request Slack got wrong", async () => {
    const leaked = await h.publishedBy(async () => {
      const r = await h.slash(`power off ${"a".repeat(40_000)}`);
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ response_type: "ephemeral", text: ":warning: That command is 40010 characters long; a command may have at most 2000." });
    });
    expect(leaked).toEqual([]);
  });

  it("help lists the commands with their usage; help power shows power's", async () => {
    const all = await h.slash("help");
    expect((all.json as { text: string }).text).toMatchInlineSnapshot(`
      "*/iaas commands you can run*
      • \`/iaas help [command]\`: Show the commands, or how to use one of them.
      • \`/iaas list [all] [glob]\`: List VMs with their power state, CPU and memory; a pattern such as \`web-*\` narrows the list, \`all\` lists every VM, not only yours. _(your and your team's VMs)_
      • \`/iaas info &lt;vm&gt;\`: Everything about one VM: power, CPU, memory, disks, host, guest OS, IP, tools, owner, hot-add. _(your and your team's VMs)_
      • \`/iaas templates\`: The templates you can deploy.
      • \`/iaas quota\`: What your VMs use of your quota (VMs, vCPU, memory, disk), and your teams'.
      • \`/iaas sizes\`: The VM sizes and limits of the policy.
      • \`/iaas create &lt;name&gt; [size] [team=@team] [lease=7d]\`: Create a new, empty VM of a size (the default size when none is given); \`team=\` gives it to a team as well.
      • \`/iaas clone &lt;source-vm&gt; &lt;name&gt; [team=@team] [lease=7d]\`: Make a full copy of a VM under a new name. _(your and your team's VMs)_
      • \`/iaas deploy &lt;template&gt; &lt;name&gt; [size] [team=@team] [lease=7d]\`: Make a new VM from a template, of a size (the default size when none is given).
      • \`/iaas power on|off|reset|suspend|shutdown|reboot &lt;vm&gt;\`: Power a VM on or off, reset or suspend it, or shut down or reboot its guest OS (needs VMware Tools). _(your and your team's VMs)_
      • \`/iaas resize &lt;vm&gt; [cpu=N] [memory=GB]\`: Set a VM's vCPUs and/or memory (GB), within the policy's limits; a running VM needs hot-add. _(your and your team's VMs)_
      • \`/iaas delete &lt;vm&gt;\`: Delete a VM (after you confirm). _(your and your team's VMs)_
      • \`/iaas owner &lt;vm&gt; &lt;@user|@team&gt;\`: Give a VM to a person (its new owner) or to a team; adopts a VM nobody owns (IT admins). _(VMs you own)_
      • \`/iaas snapshot create|list|revert|delete &lt;vm&gt; [name]\`: Take a snapshot of a VM (\`create\`, named by the time unless you name it), \`list\` its snapshots, \`revert\` to one (the current one by default, after you confirm), or \`delete\` one (its children are kept). _(your and your team's VMs)_
      • \`/iaas lease &lt;vm&gt; [set &lt;duration|date&gt;|none]\`: A VM's lease: when it ends, the time left and what happens then. \`set 30d\` or \`set 2027-01-31\` sets it (its owner and team up to the policy's max, as \`extend\`; IT admins any), \`none\` removes it (IT admins). _(your and your team's VMs)_
      • \`/iaas extend &lt;vm&gt; [duration] [power=on]\`: Extend a VM's lease to a duration from now (the policy's default when none is given); \`power=on\` powers it on as well. _(your and your team's VMs)_
      • \`/iaas approvals\`: The requests waiting for an approval: those you asked for, and those you may approve or reject (with the buttons).
      \`&lt;vm&gt;\` is an exact VM name or an inventory path starting with \`/\`; wildcards are not accepted."
    `);
    const power = await h.slash("help power");
    expect((power.json as { text: string }).text).toMatchInlineSnapshot(`
      "*/iaas power*: Power a VM on or off, reset or suspend it, or shut down or reboot its guest OS (needs VMware Tools). _(your and your team's VMs)_
      Usage: \`/iaas power on|off|reset|suspend|shutdown|reboot &lt;vm&gt;\`"
    `);
  });

  it("a Slack retry of the same request (same trigger_id, X-Slack-Retry-Num) yields one command", async () => {
    const before = await h.lastCommandSeq();
    const responseUrl = h.slack.responseUrl();
    const triggerId = `${Date.now()}.7.${randomUUID()}`;
    const first = await h.slash("power suspend batch-9", { trigger_id: triggerId, response_url: responseUrl });
    const retry = await h.slash("power suspend batch-9", { trigger_id: triggerId, response_url: responseUrl }, { "x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout" });
    expect(first.status).toBe(200);
    expect(retry.status).toBe(200);
    const id = requestIdOf(first.json);
    expect(requestIdOf(retry.json)).toBe(id);
    const leaked = await h.publishedBy(async () => undefined);
    expect(leaked).toEqual([]);
    const cmds = (await h.commands(before)).filter((c) => c.body.vm === "batch-9");
    expect(cmds.map((c) => c.body.id)).toEqual([id]);
  });

  it("different requests for the same VM are different commands", async () => {
    const a = await h.slash("power on twin");
    const b = await h.slash("power on twin");
    expect(requestIdOf(a.json)).not.toBe(requestIdOf(b.json));
  });

  describe("replies only go to Slack's host", () => {
    it("refuses a command whose response_url is on another host, and never posts there", async () => {
      await using evil = await SlackStandIn.start();
      for (const responseUrl of ["http://127.0.0.2:1/x", "https://evil.example/x", evil.responseUrl("x"), "https://hooks.slack.com.evil.example/x", "http://hooks.slack.com/commands/x"]) {
        const leaked = await h.publishedBy(async () => {
          const r = await h.slash("power off web-01", { response_url: responseUrl });
          expect(r.status).toBe(200);
          expect(r.json).toEqual({ response_type: "ephemeral", text: ":warning: This request cannot be answered: its response URL is not Slack's." });
        });
        expect(leaked, responseUrl).toEqual([]);
      }
      expect(evil.calls).toEqual([]);
    });

    it("does not post a result to a foreign response_url found in the request store", async () => {
      await using evil = await SlackStandIn.start();
      const id = `r-forged${randomUUID().replace(/-/g, "").slice(0, 16)}`;
      const kv = await openBucket(h.nc, "requests");
      await kv.put(
        id,
        JSON.stringify({ id, responseUrl: evil.responseUrl("x"), teamId: "T0TEAM", channelId: "C0OPS", userId: "U0ALICE", text: "power off web-01", createdAt: now(), posts: 0, finalDelivered: false }),
      );
      const seq = await h.publishResult({ id, status: "succeeded", command: "power.off", message: "done", at: now() });
      await h.resultsAckedThrough(seq);
      expect(evil.calls).toEqual([]);
    });
  });

  it("stops posting progress before Slack's 5-post limit and keeps the last post for the result", async () => {
    const r = await h.slash("power reboot web-03");
    const id = requestIdOf(r.json);
    for (let i = 1; i <= 6; i++) await h.publishResult({ id, status: "progress", command: "power.reboot", message: `step ${i}`, at: now() });
    const seq = await h.publishResult({ id, status: "succeeded", command: "power.reboot", message: "web-03 rebooted.", at: now() });
    await h.resultsAckedThrough(seq);
    expect(h.slack.postsTo(r.responseUrl).map((c) => c.body.text)).toEqual([
      `:hourglass_flowing_sand: step 1 (request \`${id}\`)`,
      `:hourglass_flowing_sand: step 2 (request \`${id}\`)`,
      `:hourglass_flowing_sand: step 3 (request \`${id}\`)`,
      `:hourglass_flowing_sand: step 4 (request \`${id}\`)`,
      `:white_check_mark: web-03 rebooted. (request \`${id}\`)`,
    ]);
    // No bot token in this gateway: nothing goes to chat.postMessage.
    expect(h.slack.apiCalls("chat.postMessage")).toEqual([]);
  });

  it("counts commands by verb and outcome and times the ack", async () => {
    const value = async (name: string, labels: Record<string, string>) => {
      const m = await h.metrics.registry.getSingleMetric(name)?.get();
      return m?.values.find((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want))?.value ?? 0;
    };
    expect(await value("iaas_commands_total", { verb: "power.off", outcome: "accepted", code: "" })).toBeGreaterThan(0);
    expect(await value("iaas_commands_total", { verb: "unknown", outcome: "rejected", code: "IAAS_UNKNOWN_COMMAND" })).toBe(3);
    expect(await value("iaas_commands_total", { verb: "power", outcome: "rejected", code: "IAAS_BAD_VM_NAME" })).toBe(1);
    expect(await value("iaas_commands_total", { verb: "power.suspend", outcome: "accepted", code: "" })).toBe(1);
    expect(await value("iaas_commands_total", { verb: "power.suspend", outcome: "duplicate", code: "" })).toBe(1);
    expect(await value("iaas_gateway_ack_seconds", { verb: "power.off" })).toBeGreaterThan(0);
  });
});
