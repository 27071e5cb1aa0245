// The local Slack console's page: the channel, the app's Home and Messages tabs, an "acting as"
// picker, modals, and what the app sends, streamed from the stand-in as server-sent events.
import { messageToHtml, viewToHtml, optionsHtml, textToHtml, textToText, escapeHtml, setPeople } from "/render.js";

const $ = (id) => document.getElementById(id);
const list = $("messages");
const dmList = $("dm-messages");
const box = $("box");
const who = $("who");
const dialog = $("confirm");
const modal = $("modal");
const byId = new Map();
/** user → { stack, errors, problem }; user "" is a modal from a trigger the console did not hand out. */
const modals = new Map();
/** user → the Home view the app published for them. */
const homes = new Map();
let shownModal; // { id, hash } of the modal on screen

const { people, channel } = await (await fetch("/people")).json();
setPeople(Object.fromEntries(people.map((p) => [p.id, p.name])));
for (const p of people) who.add(new Option(p.label, p.id));
const nameOf = (id) => people.find((p) => p.id === id)?.name ?? id;
const channelLabel = (c) => (c === channel.id ? `#${channel.name}` : `#${c}`);

function render(m) {
  const li = byId.get(m.id) ?? document.createElement("li");
  li.className = `msg ${m.source}${m.ephemeral ? " ephemeral" : ""}${m.source === "error" ? " error" : ""}`;
  li.dataset.id = m.id;
  const name = m.source === "command" ? nameOf(m.user) : m.source === "error" ? "Slackbot" : "iaas";
  const time = new Date(Number(m.ts) * 1000).toLocaleTimeString();
  const where = !m.dm && m.channel !== channel.id ? ` · ${escapeHtml(channelLabel(m.channel))}` : "";
  const only = m.ephemeral ? `<div class="only">${m.user === who.value ? "Only visible to you" : `Only visible to ${escapeHtml(nameOf(m.user))}`}</div>` : "";
  const body = m.source === "command" ? escapeHtml(m.text) : messageToHtml(m);
  li.innerHTML = `<div class="meta"><span class="name">${escapeHtml(name)}</span>${m.source === "command" ? "" : "APP "}${escapeHtml(time)}${where}${m.edited ? " (edited)" : ""}</div>${only}<div class="body">${body}</div>`;
  li.__message = m;
  // A DM is in its user's Messages tab only.
  li.hidden = Boolean(m.dm) && m.dm !== who.value;
  if (!byId.has(m.id)) {
    byId.set(m.id, li);
    (m.dm ? dmList : list).append(li);
  }
  if (!li.hidden) li.scrollIntoView({ block: "end" });
}

// ---- tabs ------------------------------------------------------------------------------------
const tabs = [$("tab-channel"), $("tab-home"), $("tab-dm")];
let current = "tab-channel";
function select(tabId, focus = false) {
  current = tabId;
  for (const t of tabs) {
    const on = t.id === tabId;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !on;
  }
  if (focus) $(tabId).focus();
  // Opening the app's Home or Messages tab is Slack's app_home_opened event.
  if (tabId !== "tab-channel") void post("/home", { user: who.value, tab: tabId === "tab-home" ? "home" : "messages" });
}
for (const t of tabs) t.addEventListener("click", () => select(t.id));
document.querySelector("[role=tablist]").addEventListener("keydown", (ev) => {
  const i = tabs.findIndex((t) => t.id === current);
  if (ev.key === "ArrowRight") select(tabs[(i + 1) % tabs.length].id, true);
  else if (ev.key === "ArrowLeft") select(tabs[(i + tabs.length - 1) % tabs.length].id, true);
});

// ---- the Home tab ------------------------------------------------------------------------------
function renderHome() {
  const view = homes.get(who.value);
  const body = $("home-body");
  body.dataset.viewId = view?.id ?? "";
  body.innerHTML = view ? viewToHtml(view) : `<p class="empty">The app has not published a Home for ${escapeHtml(nameOf(who.value))} yet.</p>`;
}

// ---- modals ------------------------------------------------------------------------------------
const topModal = () => {
  const m = modals.get(who.value)?.stack.length ? modals.get(who.value) : modals.get("");
  return m?.stack.length ? { ...m, view: m.stack.at(-1) } : undefined;
};

/** What the modal's inputs hold: block_id → action_id → text or option value (null when empty). */
function modalValues() {
  const values = {};
  for (const el of $("modal-body").querySelectorAll("[data-block-id][data-action-id]")) {
    if (el.tagName === "SPAN") continue;
    (values[el.dataset.blockId] ??= {})[el.dataset.actionId] = el.value === "" ? null : el.value;
  }
  return values;
}

function renderModal() {
  const top = topModal();
  if (!top) {
    shownModal = undefined;
    if (modal.open) modal.close();
    return;
  }
  const { view, errors, problem } = top;
  if (shownModal?.id !== view.id || shownModal?.hash !== view.hash) {
    // An update keeps what the person typed where the block and action ids stay, as Slack does.
    const kept = shownModal?.id === view.id ? modalValues() : {};
    $("modal-title").textContent = textToText(view.title);
    $("modal-body").innerHTML = viewToHtml(view, errors);
    for (const el of $("modal-body").querySelectorAll("[data-block-id][data-action-id]")) {
      const v = kept[el.dataset.blockId]?.[el.dataset.actionId];
      if (v !== undefined && v !== null && el.tagName !== "SPAN") {
        if (el.tagName === "SELECT" && ![...el.options].some((o) => o.value === v)) continue;
        el.value = v;
      }
    }
    $("modal-close").textContent = textToText(view.close) || "Cancel";
    $("modal-submit").textContent = textToText(view.submit) || "Submit";
    $("modal-submit").hidden = !view.submit;
    shownModal = { id: view.id, hash: view.hash };
    for (const s of $("modal-body").querySelectorAll("input.suggest")) if (Number(s.dataset.minQuery) === 0) void suggest(s);
  }
  showErrors(errors ?? {});
  $("modal-problem").textContent = problem ?? "";
  if (!modal.open) modal.showModal();
}

function showErrors(errors) {
  for (const el of $("modal-body").querySelectorAll("[data-block-id][data-action-id]")) {
    const wrap = el.closest(".block.input");
    const msg = errors[el.dataset.blockId];
    wrap.classList.toggle("invalid", Boolean(msg));
    if (msg) el.setAttribute("aria-invalid", "true");
    else el.removeAttribute("aria-invalid");
    wrap.querySelector(".field-error").textContent = msg ?? "";
  }
}

/** Slack's own checks before it sends a submission: required fields, minimum lengths. */
function localErrors() {
  const errors = {};
  for (const el of $("modal-body").querySelectorAll("[data-block-id][data-action-id]")) {
    if (el.tagName === "SPAN") continue;
    if (el.getAttribute("aria-required") === "true" && el.value.trim() === "") errors[el.dataset.blockId] = "Please complete this required field.";
    else if (el.dataset.minLength && el.value !== "" && el.value.length < Number(el.dataset.minLength)) errors[el.dataset.blockId] = `Please enter at least ${el.dataset.minLength} characters.`;
  }
  return errors;
}

async function suggest(search) {
  const select = $(search.dataset.suggestFor);
  if (search.value.length < Number(search.dataset.minQuery)) return;
  const answer = await post("/suggest", { viewId: shownModal?.id, actionId: select.dataset.actionId, value: search.value, user: who.value, values: modalValues() });
  const keep = select.value;
  select.innerHTML = `<option value="">${escapeHtml(answer.options?.length || answer.option_groups?.length ? "Select an option" : "No options found")}</option>${optionsHtml(answer.options ?? [], answer.option_groups ?? [], keep)}`;
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

$("modal-body").addEventListener("input", (ev) => {
  if (ev.target.matches("input.suggest")) void suggest(ev.target);
});

$("modal-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const top = topModal();
  if (!top) return;
  const errors = localErrors();
  if (Object.keys(errors).length) return showErrors(errors);
  $("modal-submit").disabled = true;
  try {
    await post("/view", { viewId: top.view.id, user: who.value, values: modalValues() });
  } finally {
    $("modal-submit").disabled = false;
  }
});

async function closeModal() {
  const top = topModal();
  if (top) await post("/view", { viewId: top.view.id, user: who.value, values: modalValues(), close: true });
}
$("modal-close").addEventListener("click", () => void closeModal());
modal.addEventListener("cancel", (ev) => {
  ev.preventDefault();
  void closeModal();
});

// ---- the stream --------------------------------------------------------------------------------
const events = new EventSource("/events");
events.onmessage = (ev) => {
  const e = JSON.parse(ev.data);
  if (e.kind === "delete") {
    byId.get(e.id)?.remove();
    byId.delete(e.id);
  } else if (e.kind === "modal") {
    modals.set(e.user, { stack: e.stack, errors: e.errors, problem: e.problem });
    renderModal();
  } else if (e.kind === "home") {
    homes.set(e.user, e.view);
    if (e.user === who.value) renderHome();
  } else render(e.message);
};

async function post(path, body) {
  const res = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return res.json();
}

for (const [form, input, pane] of [[$("composer"), box, "channel"], [$("dm-composer"), $("dm-box"), "dm"]]) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    await post("/command", { text, user: who.value, pane });
  });
}

/** A button's `confirm` object shown as a dialog; resolves to whether the person confirmed. */
function confirmed(c) {
  if (!c) return Promise.resolve(true);
  $("confirm-title").textContent = textToText(c.title) || "Are you sure?";
  $("confirm-text").innerHTML = textToHtml(c.text);
  $("confirm-ok").textContent = textToText(c.confirm) || "Confirm";
  $("confirm-deny").textContent = textToText(c.deny) || "Cancel";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}

const elementOf = (blocks, blockIndex, actionId) => {
  const block = blocks[blockIndex];
  return (block?.type === "actions" ? block.elements : [block?.accessory]).find((e) => e?.action_id === actionId);
};

document.addEventListener("click", async (ev) => {
  const btn = ev.target.closest("button[data-action-id]");
  if (!btn) return;
  const blockIndex = Number(btn.dataset.blockIndex);
  const actionId = btn.dataset.actionId;
  let body;
  let blocks;
  if (btn.closest("li.msg")) {
    const m = btn.closest("li.msg").__message;
    blocks = m.blocks;
    body = { messageId: m.id, blockIndex, actionId, user: who.value };
  } else if (btn.closest("#home-body")) {
    const view = homes.get(who.value);
    blocks = view?.blocks ?? [];
    body = { viewId: view?.id, blockIndex, actionId, user: who.value };
  } else if (btn.closest("#modal-body")) {
    const view = topModal()?.view;
    blocks = view?.blocks ?? [];
    body = { viewId: view?.id, blockIndex, actionId, user: who.value, values: modalValues() };
  } else return;
  if (!(await confirmed(elementOf(blocks, blockIndex, actionId)?.confirm))) return;
  btn.disabled = true;
  try {
    await post("/action", body);
  } finally {
    btn.disabled = false;
  }
});

who.addEventListener("change", () => {
  for (const li of byId.values()) render(li.__message);
  renderHome();
  renderModal();
  // The new user opens the tab that is showing.
  if (current !== "tab-channel") select(current);
  box.focus();
});
renderHome();
box.focus();
