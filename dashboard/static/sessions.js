// Lone work: the open sessions from a fetch, then every change from the live feed.
"use strict";

// Amber: due within the gateway's [sessions] reminder_before_s (the device is reminded then too).
let reminderWindowS = null;
let sessions = new Map();
let socket = null;

function showError(message) {
  const p = document.getElementById("error");
  p.textContent = message || "";
  p.hidden = !message;
}

function timeLeft(s, now) {
  const left = s.due_at - now;
  return left >= 0 ? age(now - left, now) : "OVERDUE " + age(s.due_at, now);
}

// A session started on the wearable has no place typed in, only where the device said it was.
function whereAt(s) {
  if (s.place) return s.place;
  return Object.entries(s.location || {}).map(([k, v]) => k + " " + v).join(" · ");
}

function urgency(s, now) {
  if (s.state === "overdue" || s.due_at <= now) return "overdue";
  return reminderWindowS !== null && s.due_at - now <= reminderWindowS ? "due-soon" : "";
}

async function act(s, what, body) {
  try {
    const changed = await post("/api/sessions/" + s.id + "/" + what, body);
    update(changed);
    showError("");
  } catch (e) { showError(e.message); }
}

function actions(s) {
  return el("span", {},
    el("button", { class: "extend", onclick: () => {
      const minutes = prompt("Extend by how many minutes?", "30");
      if (minutes) act(s, "extend", { duration_s: Number(minutes) * 60 });
    } }, "Extend"), " ",
    el("button", { class: "check-in", onclick: () => {
      const note = prompt("Check in on the worker's behalf: how do you know they are fine?", "phoned: fine");
      if (note !== null) act(s, "check-in", { note });
    } }, "Check in"), " ",
    el("button", { class: "end", onclick: () => {
      if (confirm("Check " + (s.worker || "this worker") + " out?")) act(s, "end");
    } }, "Check out"));
}

function render() {
  const now = Date.now() / 1000;
  const open = [...sessions.values()].filter((s) => s.state !== "ended");
  open.sort((a, b) => (urgency(b, now) === "overdue") - (urgency(a, now) === "overdue") || a.due_at - b.due_at || a.id - b.id);
  const body = document.querySelector("#active tbody");
  body.replaceChildren(...open.map((s) => el("tr", { class: urgency(s, now), dataset: { session: s.id } },
    // The labels head each cell where a narrow screen stacks a row into a card.
    el("td", { "data-label": "#" }, s.id),
    el("td", { "data-label": "Worker" }, workerNodes(s.worker ? { name: s.worker, phone: s.phone || "" } : null)),
    el("td", { "data-label": "Place" }, whereAt(s), s.note ? el("div", { class: "quiet" }, s.note) : null),
    el("td", { "data-label": "Started" }, clock(s.started_at)),
    el("td", { "data-label": "Due" }, clock(s.due_at), s.check_in_s ? el("div", { class: "quiet" }, "check-in every " + Math.round(s.check_in_s / 60) + " min") : null),
    el("td", { class: "left", "data-label": "Time left" }, timeLeft(s, now)),
    el("td", { "data-label": "Last check-in" }, s.last_check_in ? clock(s.last_check_in) : "none"),
    el("td", { "data-label": "Device" }, s.device ? s.device + " · " + (s.device_state || "unknown") : "no device"),
    el("td", {}, actions(s)))));
  document.getElementById("none-active").hidden = open.length > 0;
}

function update(s) {
  if (s.state === "ended") { sessions.delete(s.id); loadEnded(); } else sessions.set(s.id, s);
  render();
}

async function loadActive() {
  sessions = new Map((await api("/api/sessions?state=active")).map((s) => [s.id, s]));
  render();
}

async function loadEnded() {
  const rows = await api("/api/sessions?state=ended&per_page=50");
  document.querySelector("#ended tbody").replaceChildren(...rows.map((s) => el("tr", {},
    el("td", { "data-label": "#" }, s.id),
    el("td", { "data-label": "Worker" }, s.worker || "(removed)", s.phone ? " · " + s.phone : ""),
    el("td", { "data-label": "Place" }, whereAt(s)),
    el("td", { "data-label": "From" }, when(s.started_at)), el("td", { "data-label": "To" }, when(s.ended_at)),
    el("td", { "data-label": "Check-ins" }, s.check_ins),
    el("td", { "data-label": "Ran overdue" }, s.overdue_at ? "yes, " + clock(s.overdue_at) : "no"),
    el("td", { "data-label": "How it ended" }, (s.ended_how || "").replaceAll("_", " ") + (s.ended_by ? " (" + s.ended_by + ")" : "")))));
}

async function loadWorkers() {
  const select = document.querySelector("#register select[name=worker_id]");
  for (const w of await api("/api/workers")) select.append(el("option", { value: w.id }, w.name + " · " + w.phone + (w.device ? " · " + w.device : "")));
}

function connect() {
  const ws = socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    document.getElementById("link-lost").hidden = true;
    if (msg.type === "snapshot") loadActive().catch((e) => showError(e.message));
    else if (msg.type === "session" && msg.session) update(msg.session);
    else if (msg.type === "device" && msg.device) {
      for (const s of sessions.values()) if (s.device === msg.device.device) s.device_state = msg.device.state;
      render();
    }
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    document.getElementById("link-lost").hidden = false;
    setTimeout(connect, 2000);
  };
}

document.getElementById("register").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = { place: f.get("place"), duration_s: Number(f.get("minutes")) * 60 };
  if (f.get("worker_id")) body.worker_id = Number(f.get("worker_id"));
  else { body.name = f.get("name"); body.phone = f.get("phone"); }
  if (f.get("check_in_minutes")) body.check_in_s = Number(f.get("check_in_minutes")) * 60;
  for (const key of ["device", "note"]) if (f.get(key)) body[key] = f.get(key);
  try {
    update(await post("/api/sessions", body));
    ev.target.reset();
    showError("");
  } catch (e) { showError(e.message); }
});

async function loadSettings() {
  reminderWindowS = (await api("/api/sessions/settings")).reminder_before_s;
  document.getElementById("reminder-window").textContent = age(0, reminderWindowS);
  render();
}

setInterval(render, 1000);
loadSettings().catch((e) => showError(e.message));
loadWorkers().catch((e) => showError(e.message));
loadEnded().catch((e) => showError(e.message));
connect();
