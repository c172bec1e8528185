// The live board: one snapshot, then live changes over the WebSocket.
// It must never look calm while it is blind: a lost link shows at once.
"use strict";
const incidents = new Map();
const muted = new Set();        // alarms the operator silenced without acknowledging
let vocabulary = { type_labels: {}, cause_labels: {}, priorities: [], person_types: [], resolutions: {} };
let selected = null;            // id of the alarm the keys act on
let lastHeard = 0;              // when the link last said anything (a tick every 5 s at least)
const LINK_SILENT_MS = 15000;

// Page state the browser tests read: what the desk is showing and sounding.
const desk = window.desk = { link: "connecting", sounding: [], tonesPlayed: 0, soundEnabled: false, lastTone: null, problems: [] };

// ---- sound -------------------------------------------------------------------
// Web Audio, made here: no file to fetch (the desk may be offline). A person
// in danger: a fast high two-tone. A technical fault: a slow low single tone.
let audio = null;

function enableSound() {
  if (!audio) audio = new AudioContext();
  audio.resume().then(() => {
    desk.soundEnabled = audio.state === "running";
    const button = document.getElementById("sound-enable");
    button.textContent = desk.soundEnabled ? "Sound on" : "Click to enable sound";
    button.className = "sound " + (desk.soundEnabled ? "on" : "off");
    document.getElementById("sound-blocked").hidden = desk.soundEnabled;
  });
}

function tone(kind) {
  desk.lastTone = kind;
  desk.tonesPlayed += 1;
  if (!audio || audio.state !== "running") return;
  const steps = kind === "person" ? [[988, 0, .18], [740, .2, .18], [988, .4, .18], [740, .6, .18]] : [[392, 0, .45]];
  for (const [freq, at, len] of steps) {
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.type = kind === "person" ? "square" : "sine";
    osc.frequency.value = freq;
    const t = audio.currentTime + at;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(kind === "person" ? 0.25 : 0.15, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + len);
    osc.connect(gain).connect(audio.destination);
    osc.start(t); osc.stop(t + len + 0.02);
  }
}

function isPerson(i) { return vocabulary.person_types.includes(i.type) || i.priority === "critical"; }

let beat = 0;
setInterval(() => {  // one beat a second: persons every 2 s, technical every 6 s
  beat += 1;
  const ringing = [...incidents.values()].filter(i => i.state === "raised" && !muted.has(i.id));
  desk.sounding = ringing.map(i => i.id);
  if (ringing.some(isPerson)) { if (beat % 2 === 0) tone("person"); }
  else if (ringing.length && beat % 6 === 0) tone("technical");
  if (Date.now() - lastHeard > LINK_SILENT_MS && desk.link === "up") {
    linkLost("no word from the gateway for 15 s");
    const dead = socket; socket = null; dead.close(); connect();
  }
  tickAges();
}, 1000);

document.getElementById("sound-enable").addEventListener("click", enableSound);
document.getElementById("sound-test").addEventListener("click", () => { enableSound(); tone("person"); });
document.addEventListener("pointerdown", () => { if (!desk.soundEnabled) enableSound(); }, { once: false });

// ---- the board -----------------------------------------------------------------

function rank(priority) {
  const at = vocabulary.priorities.indexOf(priority);
  return at < 0 ? -1 : at;  // an unknown priority ranks above all
}

function openSorted() {
  return [...incidents.values()].filter(i => i.state !== "resolved")
    .sort((a, b) => rank(a.priority) - rank(b.priority) || a.raised_at - b.raised_at || a.id - b.id);
}

function useVocabulary(v) {
  vocabulary = v;
  const select = document.querySelector("#resolve-form select[name=reason]");
  select.replaceChildren(...Object.entries(v.resolutions).map(([value, text]) => el("option", { value }, text)));
}

function card(i) {
  const person = isPerson(i);
  const ringing = i.state === "raised" && !muted.has(i.id);
  const acked = i.acknowledged_by ? "acknowledged by " + i.acknowledged_by + " at " + clock(i.acknowledged_at) : "NOT ACKNOWLEDGED";
  const li = el("li", {
    class: ["card", i.state, person ? "person" : "technical", ringing ? "ringing" : "", i.id === selected ? "selected" : ""].join(" "),
    tabindex: "0", dataset: { id: i.id }, "aria-label": label(i, vocabulary) + ", " + (i.worker ? i.worker.name : "no worker assigned"),
    onfocus: () => { selected = i.id; },
  },
    el("div", { class: "what" }, el("span", { class: "type" }, label(i, vocabulary)),
      el("span", { class: "age", dataset: { since: i.raised_at } }, age(i.raised_at))),
    el("div", { class: "who" }, workerNodes(i.worker)),
    i.worker && i.worker.note ? el("div", { class: "note" }, "Note: " + i.worker.note) : null,
    i.session ? el("div", { class: "note" }, "Lone work due " + clock(i.session.due_at) + " · last check-in "
      + (i.session.last_check_in ? clock(i.session.last_check_in) : "none")) : null,
    el("div", { class: "facts" },
      el("span", {}, "Device ", el("b", {}, deviceOf(i)), i.registered === false ? el("span", { class: "unassigned" }, " UNREGISTERED") : null),
      el("span", {}, place(i)),
      deviceOf(i) === "none" ? null
        : el("span", {}, "Battery " + (i.battery_pct === null || i.battery_pct === undefined ? "unknown" : i.battery_pct + " %")),
      i.alarm_count > 1 ? el("span", {}, i.alarm_count + " alarms") : null),
    el("div", { class: "state" }, el("span", { class: "ack" }, acked), " · raised " + clock(i.raised_at),
      " · ", el("a", { href: "/incident/" + i.id }, "#" + i.id + " timeline")),
    el("div", { class: "actions" },
      i.state === "raised" ? el("button", { type: "button", class: "primary", onclick: () => acknowledge(i.id) }, "Acknowledge") : null,
      el("button", { type: "button", onclick: () => askResolve(i.id) }, "Resolve…"),
      i.state === "raised" ? el("button", { type: "button", "aria-pressed": muted.has(i.id) ? "true" : "false",
        onclick: () => toggleMute(i.id) }, muted.has(i.id) ? "Unmute" : "Mute") : null));
  return li;
}

function render() {
  const open = openSorted();
  const list = document.getElementById("open");
  const focusedId = document.activeElement && document.activeElement.closest && document.activeElement.closest(".card")
    ? Number(document.activeElement.closest(".card").dataset.id) : null;
  list.replaceChildren(...open.map(card));
  if (focusedId !== null) { const again = list.querySelector(`[data-id="${focusedId}"]`); if (again) again.focus(); }
  const unacked = open.filter(i => i.state === "raised").length;
  document.getElementById("open-count").textContent = open.length;
  document.getElementById("none-open").hidden = open.length > 0;
  document.body.classList.toggle("alarming", open.some(i => i.state === "raised" && isPerson(i) && !muted.has(i.id)));
  const closed = [...incidents.values()].filter(i => i.state === "resolved").sort((a, b) => b.id - a.id).slice(0, 20);
  document.querySelector("#closed tbody").replaceChildren(...closed.map(i => el("tr", {},
    el("td", {}, el("a", { href: "/incident/" + i.id }, "#" + i.id)), el("td", {}, when(i.raised_at)),
    el("td", {}, label(i, vocabulary)), el("td", {}, i.worker ? i.worker.name : "—"), el("td", {}, deviceOf(i)),
    el("td", {}, when(i.resolved_at) + " by " + (i.resolved_by || "")),
    el("td", {}, vocabulary.resolutions[i.resolution] || i.resolution || ""))));
  document.title = (unacked ? "⚠ " : "") + "(" + open.length + ") lonewatch — alarms";
}

function tickAges() {
  const now = Date.now() / 1000;
  for (const span of document.querySelectorAll(".age[data-since]")) span.textContent = age(Number(span.dataset.since), now);
}

function announce(i) {
  document.getElementById("announce").textContent = "New alarm: " + label(i, vocabulary) + ", " +
    (i.worker ? i.worker.name + ", phone " + (i.worker.phone || "not given") : "no worker assigned") + ", device " + deviceOf(i) + ", " + place(i);
}

// ---- actions -------------------------------------------------------------------

function showError(message) {
  const bar = document.getElementById("error");
  bar.textContent = message;
  bar.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { bar.hidden = true; }, 20000);
}

async function act(id, what, fields) {
  try {
    const data = await post("/api/incidents/" + id + "/" + what, fields);
    incidents.set(data.id, data);
    render();
    return true;
  } catch (e) {
    // Another operator got there first: show what happened and the alarm as it is now.
    if (e.data && e.data.incident) { incidents.set(e.data.incident.id, e.data.incident); render(); }
    showError(e.message);
    return false;
  }
}

function acknowledge(id) { muted.delete(id); return act(id, "ack"); }

function toggleMute(id) { if (muted.has(id)) muted.delete(id); else muted.add(id); render(); }

function askResolve(id) {
  const dialog = document.getElementById("resolve-dialog");
  document.getElementById("resolve-id").textContent = "#" + id;
  document.getElementById("resolve-error").hidden = true;
  dialog.dataset.id = id;
  dialog.showModal();
}

document.getElementById("resolve-ok").addEventListener("click", async (ev) => {
  ev.preventDefault();
  const dialog = document.getElementById("resolve-dialog");
  const form = new FormData(document.getElementById("resolve-form"));
  if (await act(dialog.dataset.id, "resolve", { reason: form.get("reason"), note: form.get("note") })) dialog.close();
  else { const err = document.getElementById("resolve-error"); err.textContent = document.getElementById("error").textContent; err.hidden = false; }
});

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || document.querySelector("dialog[open]")) return;
  if (ev.target.matches("input, textarea, select")) return;
  if (!desk.soundEnabled) enableSound();
  const open = openSorted();
  if (!open.length) return;
  let at = Math.max(0, open.findIndex(i => i.id === selected));
  const target = open[at];
  if (ev.key === "j" || ev.key === "k") {
    at = Math.min(open.length - 1, Math.max(0, at + (ev.key === "j" ? 1 : -1)));
    selected = open[at].id;
    document.querySelector(`#open [data-id="${selected}"]`).focus();
  } else if (ev.key === "a" && target.state === "raised") acknowledge(target.id);
  else if (ev.key === "r") askResolve(target.id);
  else if (ev.key === "m" && target.state === "raised") toggleMute(target.id);
  else return;
  ev.preventDefault();
});

// ---- the live link -------------------------------------------------------------

function linkLost(why) {
  desk.link = "down";
  const link = document.getElementById("link");
  link.textContent = "LINK LOST — reconnecting"; link.className = "link down";
  const banner = document.getElementById("offline");
  banner.textContent = "LIVE LINK LOST (" + why + ") — this board is not receiving alarms. Reconnecting…";
  banner.hidden = false;
  document.body.classList.add("blind");
}

let socket = null, retry = 1000;

function connect() {
  const ws = socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onmessage = (ev) => {
    lastHeard = Date.now();
    const msg = JSON.parse(ev.data);
    if (msg.type === "snapshot") {
      useVocabulary(msg.vocabulary);
      incidents.clear();
      msg.recent.forEach(i => incidents.set(i.id, i));
      msg.incidents.forEach(i => incidents.set(i.id, i));
      for (const id of [...muted]) if (!incidents.has(id)) muted.delete(id);
      document.getElementById("operator").textContent = msg.operator + " (" + msg.role + ")";
      desk.link = "up"; retry = 1000;
      const link = document.getElementById("link"); link.textContent = "live"; link.className = "link up";
      document.getElementById("offline").hidden = true;
      document.body.classList.remove("blind");
    } else if (msg.type === "incident") {
      const known = incidents.has(msg.incident.id);
      incidents.set(msg.incident.id, msg.incident);
      if (!known && msg.incident.state !== "resolved") announce(msg.incident);
    } else return;
    render();
  };
  ws.onclose = async (ev) => {
    if (socket !== ws) return;
    linkLost(ev.code === 4001 ? "logged out" : "connection closed");
    if (ev.code === 4001) { location.href = "/login"; return; }
    const me = await fetch("/api/me").catch(() => null);
    if (me && me.status === 401) { location.href = "/login"; return; }
    setTimeout(connect, retry);
    retry = Math.min(5000, retry * 2);
  };
}

// The gateway can be up and still blind or mute: not connected to the broker,
// or its database refusing writes (nothing is acknowledged then). /healthz
// says so in words; the board shows them until they clear.
const HEALTH_EVERY_MS = 5000;

async function checkHealth() {
  const banner = document.getElementById("gateway-problems");
  try {
    const health = await (await fetch("/healthz", { cache: "no-store" })).json();
    desk.problems = health.problems || [];
  } catch (e) {
    desk.problems = [];  // unreachable: the live link's own banner says so
  }
  banner.textContent = desk.problems.length ? "GATEWAY PROBLEM — " + desk.problems.join(" · ") : "";
  banner.hidden = !desk.problems.length;
}
setInterval(checkHealth, HEALTH_EVERY_MS);
checkHealth();

// A frozen page (laptop lid, network gone without a close) is caught by the silence check above.
window.addEventListener("offline", () => { if (socket) socket.close(); });
connect();
