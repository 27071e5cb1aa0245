#!/usr/bin/env node
// Plays Slack for a local `npm start`: sends a signed `/iaas <text>` to the gateway, with a
// response_url on the local Slack stand-in, and prints the ack and what the gateway posted back.
//   node scripts/slack.mjs "power off DC0_H0_VM0" [--user U0001] [--wait 30]
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { randomUUID } from "node:crypto";

const root = fileURLToPath(new URL("..", import.meta.url));
const kit = await import(join(root, "packages/testkit/dist/mod.js"));
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args.splice(i, 2)[1] : def;
};
const user = opt("user", "U0001");
const waitS = Number(opt("wait", "30"));
const text = args.join(" ");
const local = JSON.parse(await readFile(join(root, ".run/local-slack.json"), "utf8").catch(() => {
  console.error("no .run/local-slack.json: start the system with `npm start` and no SLACK_SIGNING_SECRET first");
  process.exit(2);
}));
const secret = process.env.SLACK_SIGNING_SECRET ?? (await readFile(join(root, ".run/slack-signing-secret"), "utf8"));
const base = new URL(local.apiUrl);
const responseUrl = `${base.origin}/response/${randomUUID()}`;
const body = kit.slashCommandBody({ text, user_id: user, response_url: responseUrl });
const ack = await kit.postSigned(process.env.GATEWAY_URL ?? local.gateway, body, { secret });
console.log(`ack (HTTP ${ack.status}, ${Math.round(ack.ms)} ms): ${ack.json?.text ?? ack.body}`);
const path = new URL(responseUrl).pathname;
const deadline = Date.now() + waitS * 1000;
let seen = 0;
while (Date.now() < deadline) {
  const { calls } = await (await fetch(`${base.origin}/calls`)).json();
  const posts = calls.filter((c) => c.path === path);
  for (const p of posts.slice(seen)) console.log(`reply: ${p.body.text}`);
  seen = posts.length;
  if (posts.some((p) => p.body.replace_original !== undefined || /request/.test(p.body.text ?? "")) && posts.length && !/…$/.test(posts.at(-1).body.text ?? "")) break;
  await new Promise((r) => setTimeout(r, 250));
}
if (!seen) console.log(`no reply within ${waitS} s`);
