// The local Slack console's page: one channel, a message box, an "acting as" picker, and the
// messages the app sends, streamed from the stand-in as server-sent events.
import { messageToHtml, textToHtml, textToText, escapeHtml, setPeople } from "/render.js";

const list = document.getElementById("messages");
const box = document.getElementById("box");
const who = document.getElementById("who");
const dialog = document.getElementById("confirm");
const byId = new Map();
let people = [];

const { people: ps, channel } = await (await fetch("/people")).json();
people = ps;
setPeople(Object.fromEntries(people.map((p) => [p.id, p.name])));
for (const p of people) who.add(new Option(p.label, p.id));
const nameOf = (id) => people.find((p) => p.id === id)?.name ?? id;
const channelLabel = (c) => (c === channel.id ? `#${channel.name}` : /^[UW]/.test(c) ? `direct message to ${nameOf(c)}` : `#${c}`);

function render(m) {
  const li = byId.get(m.id) ?? document.createElement("li");
  li.className = `msg ${m.source}${m.ephemeral ? " ephemeral" : ""}${m.source === "error" ? " error" : ""}`;
  li.dataset.id = m.id;
  const name = m.source === "command" ? nameOf(m.user) : m.source === "error" ? "Slackbot" : "iaas";
  const time = new Date(Number(m.ts) * 1000).toLocaleTimeString();
  const where = m.channel !== channel.id ? ` · ${escapeHtml(channelLabel(m.channel))}` : "";
  const only = m.ephemeral ? `<div class="only">${m.user === who.value ? "Only visible to you" : `Only visible to ${escapeHtml(nameOf(m.user))}`}</div>` : "";
  const body = m.source === "command" ? escapeHtml(m.text) : messageToHtml(m);
  li.innerHTML = `<div class="meta"><span class="name">${escapeHtml(name)}</span>${m.source === "command" ? "" : "APP "}${escapeHtml(time)}${where}${m.edited ? " (edited)" : ""}</div>${only}<div class="body">${body}</div>`;
  li.__message = m;
  if (!byId.has(m.id)) {
    byId.set(m.id, li);
    list.append(li);
  }
  li.scrollIntoView({ block: "end" });
}

const events = new EventSource("/events");
events.onmessage = (ev) => {
  const e = JSON.parse(ev.data);
  if (e.kind === "delete") {
    byId.get(e.id)?.remove();
    byId.delete(e.id);
  } else render(e.message);
};

async function post(path, body) {
  const res = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return res.json();
}

document.getElementById("composer").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = box.value.trim();
  if (!text) return;
  box.value = "";
  await post("/command", { text, user: who.value });
});

/** A button's `confirm` object shown as a dialog; resolves to whether the person confirmed. */
function confirmed(c) {
  if (!c) return Promise.resolve(true);
  document.getElementById("confirm-title").textContent = textToText(c.title) || "Are you sure?";
  document.getElementById("confirm-text").innerHTML = textToHtml(c.text);
  document.getElementById("confirm-ok").textContent = textToText(c.confirm) || "Confirm";
  document.getElementById("confirm-deny").textContent = textToText(c.deny) || "Cancel";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}

list.addEventListener("click", async (ev) => {
  const btn = ev.target.closest("button[data-action-id]");
  if (!btn) return;
  const li = btn.closest("li.msg");
  const m = li.__message;
  const blockIndex = Number(btn.dataset.blockIndex);
  const block = m.blocks[blockIndex];
  const el = (block.type === "actions" ? block.elements : [block.accessory]).find((e) => e?.action_id === btn.dataset.actionId);
  if (!(await confirmed(el?.confirm))) return;
  btn.disabled = true;
  try {
    await post("/action", { messageId: m.id, blockIndex, actionId: btn.dataset.actionId, user: who.value });
  } finally {
    btn.disabled = false;
  }
});

who.addEventListener("change", () => {
  for (const li of byId.values()) render(li.__message);
  box.focus();
});
box.focus();
