// Devices with their worker, state and battery; admins give devices to workers and add workers.
"use strict";
let me = null, workers = [];

function cellFor(name, ...content) { return el("td", { "data-label": name }, ...content); }

function assignControl(device) {
  if (!me || me.role !== "admin") return "";
  const select = el("select", { "aria-label": "Worker for " + device.device },
    el("option", { value: "" }, "— nobody —"),
    workers.map(w => el("option", { value: w.id, selected: device.worker && device.worker.id === w.id }, w.name + " (" + w.phone + ")")));
  const button = el("button", { type: "button", onclick: async () => {
    try { await post("/api/devices/" + encodeURIComponent(device.device) + "/assign", { worker: select.value ? Number(select.value) : null }); load(); }
    catch (e) { showError(e.message); } } }, device.registered ? "Assign" : "Enroll & assign");
  return [select, " ", button];
}

// Cancelled by the wearer ("I'm fine"); the rest became alarms.
function prealarmText(d) {
  if (!d.prealarms) return "none";
  return d.prealarms + " (" + d.prealarms_cancelled + " cancelled)";
}

function showError(message) { const bar = document.getElementById("error"); bar.textContent = message; bar.hidden = false; }

async function load() {
  const [devices, people] = await Promise.all([api("/api/devices"), api("/api/workers")]);
  workers = people;
  document.querySelector("#devices tbody").replaceChildren(...devices.map(d => el("tr", { class: d.registered ? "" : "unregistered" },
    cellFor("Device", el("b", {}, d.device), d.registered ? "" : el("span", { class: "unassigned" }, " unregistered (" + d.unregistered_messages + " messages)")),
    cellFor("State", d.state), cellFor("Battery", d.battery_pct === null ? "unknown" : d.battery_pct + " %"),
    cellFor("Last seen", d.last_seen ? when(d.last_seen) + " (" + age(d.last_seen) + " ago)" : "never"),
    cellFor("Firmware", d.fw || "?"), cellFor("Worker", workerNodes(d.worker)), cellFor("Open alarms", d.open_incidents),
    cellFor("Pre-alarms (24 h)", prealarmText(d)),
    cellFor("Assign", assignControl(d)))));
  document.querySelector("#workers tbody").replaceChildren(...people.map(w => el("tr", {},
    cellFor("#", w.id), cellFor("Name", w.name), cellFor("Phone", el("a", { href: "tel:" + w.phone.replace(/[^0-9+]/g, "") }, w.phone)),
    cellFor("Device", w.device || "none"), cellFor("Note", w.note),
    cellFor("History", el("a", { href: "/history?worker=" + w.id }, "incidents")))));
}

document.getElementById("add-worker").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  try { await post("/api/workers", Object.fromEntries(form)); ev.target.reset(); load(); }
  catch (e) { showError(e.message); }
});

api("/api/me").then(who => { me = who; document.getElementById("add-worker").hidden = who.role !== "admin"; return load(); })
  .catch(e => showError(e.message));
