#!/usr/bin/env node
// Plays Slack for a local `npm start` in a terminal (the web console at http://127.0.0.1:3001/ does it in a
// browser): sends a signed `/iaas <text>` to the gateway, with a response_url on the local Slack stand-in,
// and prints the ack and what the gateway posted back, blocks rendered as text by the console's renderer
// (fields as `Host: DC0_H0`, buttons as `[Confirm] [Cancel]`, Slack's escapes decoded). A query answered
// in the ack ends at once; a command ends with its result.
// When the answer asks for a confirmation (delete), it clicks Confirm or Cancel as you say. A dialog the app
// opens (a bare `create`) is printed as text; fill it in in the web console.
//   node scripts/slack.mjs "power off DC0_H0_VM0" [--user U0001] [--wait 30] [--yes | --no]
//   node scripts/slack.mjs --notices     prints what was posted to the notify channel (remediation, dead letters)
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline/promises";

const root = fileURLToPath(new URL("..", import.meta.url));
// Where `npm start` keeps its state (IAAS_RUN_DIR, as it reads it).
const runDir = process.env.IAAS_RUN_DIR ?? join(root, ".run");
const kit = await import(join(root, "packages/testkit/dist/mod.js"));
const { messageToText, viewToText, setPeople } = await import(join(root, "packages/testkit/console/render.js"));
setPeople(Object.fromEntries(kit.CONSOLE_PEOPLE.map((p) => [p.id, p.name])));
/** A message's blocks as indented lines. */
const shown = (m) => messageToText(m ?? {}).split("\n").join("\n  ");
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args.splice(i, 2)[1] : def;
};
const flag = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args.splice(i, 1), true) : false;
};
const user = opt("user", "U0001");
const waitS = Number(opt("wait", "30"));
const yes = flag("yes");
const no = flag("no");
const notices = flag("notices");
const text = args.join(" ");
const local = JSON.parse(
  await readFile(join(runDir, "local-slack.json"), "utf8").catch(() => {
    console.error("no .run/local-slack.json: start the system with `npm start` and no SLACK_SIGNING_SECRET first");
    process.exit(2);
  }),
);
const secret = process.env.SLACK_SIGNING_SECRET ?? (await readFile(join(runDir, "slack-signing-secret"), "utf8").catch(() => ""));
const gateway = process.env.GATEWAY_URL ?? local.gateway;
const origin = new URL(local.apiUrl).origin;

if (notices) {
  const { calls } = await (await fetch(`${origin}/calls`)).json();
  const posts = calls.filter((c) => c.method === "chat.postMessage" && c.body.channel === (local.notifyChannel ?? "C0NOTIFY"));
  for (const p of posts) console.log(`${new Date(p.at).toISOString()} ${shown(p.body)}`);
  if (!posts.length) console.log("no notices posted yet");
  process.exit(0);
}

const responseUrl = `${origin}/response/${randomUUID()}`;
const triggerId = `${Date.now()}.1.${randomUUID()}`;
const ack = await kit.postSigned(gateway, kit.slashCommandBody({ text, user_id: user, response_url: responseUrl, trigger_id: triggerId }), { secret });
console.log(`ack (HTTP ${ack.status}, ${Math.round(ack.ms)} ms):\n  ${ack.json && typeof ack.json === "object" ? shown(ack.json) : ack.body}`);
// A progress line ends with an ellipsis (and its request id); a result or a query's answer does not.
const progress = (t) => /…\s*(\(request `[^`]+`\))?$/.test(t ?? "");

const buttons = (ack.json?.blocks ?? []).filter((b) => b.type === "actions").flatMap((b) => b.elements ?? []);
let watchUrl = responseUrl;
if (buttons.length) {
  let answer = yes ? "confirm" : no ? "cancel" : undefined;
  if (!answer && process.stdin.isTTY) {
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    answer = /^y/i.test(await rl.question("Confirm? [y/N] ")) ? "confirm" : "cancel";
    rl.close();
  }
  const button = buttons.find((b) => b.action_id === `iaas.${answer ?? "cancel"}`);
  if (!answer || !button) {
    console.log("a confirmation is waiting: run again with --yes or --no");
    process.exit(0);
  }
  // The click, as Slack sends it: a signed block_actions payload with its own response_url.
  watchUrl = `${origin}/response/${randomUUID()}`;
  const payload = {
    type: "block_actions",
    user: { id: user, username: "local", team_id: "T0001" },
    api_app_id: "A0001",
    container: { type: "message", message_ts: `${Date.now() / 1000}`, channel_id: "C0001", is_ephemeral: true },
    trigger_id: `${Date.now()}.1.${randomUUID()}`,
    team: { id: "T0001", domain: "example" },
    channel: { id: "C0001", name: "iaas" },
    response_url: watchUrl,
    actions: [{ type: "button", action_id: button.action_id, block_id: `confirm-${button.value}`, value: button.value, action_ts: `${Date.now() / 1000}` }],
  };
  const click = await kit.postSigned(gateway, kit.blockActionsBody(payload), { secret });
  console.log(`clicked ${answer} (HTTP ${click.status})`);
}

// An answer in the ack (a query, a refusal) is final unless it says it is under way.
const answered = typeof ack.json?.text === "string" && ack.json.text !== "" && !progress(ack.json.text);
if (!buttons.length && (ack.status !== 200 || answered)) process.exit(ack.status === 200 ? 0 : 1);

// Print replies until a final one (success or failure) arrives, or the wait runs out.
const path = new URL(watchUrl).pathname;
const deadline = Date.now() + waitS * 1000;
let seen = 0;
let final = false;
while (!final && Date.now() < deadline) {
  const { calls } = await (await fetch(`${origin}/calls`)).json();
  const posts = calls.filter((c) => c.path === path);
  // A dialog opened with this command's trigger: a terminal cannot fill it in; the web console can.
  const opened = calls.find((c) => c.method === "views.open" && c.body.trigger_id === triggerId);
  if (opened) {
    const view = typeof opened.body.view === "string" ? JSON.parse(opened.body.view) : opened.body.view;
    console.log(`the app opened a dialog:\n  ${viewToText(view).split("\n").join("\n  ")}\nfill it in in the web console (http://127.0.0.1:${process.env.SLACK_CONSOLE_PORT ?? 3001}/), or give the command its arguments`);
    process.exit(0);
  }
  for (const p of posts.slice(seen)) {
    console.log(`reply:\n  ${shown(p.body)}`);
    if (!progress(p.body.text)) final = true;
  }
  seen = posts.length;
  if (!final) await new Promise((r) => setTimeout(r, 250));
}
if (!seen && (!buttons.length || yes || no)) console.log(`no reply within ${waitS} s (queries answer in the ack above)`);
