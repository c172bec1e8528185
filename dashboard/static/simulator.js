// The demo's simulated wearables: their state from the simulator every few
// seconds (it lives in the simulator, not at the gateway), and buttons that
// act on a device as its wearer would.
"use strict";

const REFRESH_MS = 2000;
const SHOWN_AT_MOST = 100;  // a thousand rows would bury the one you are looking for
const ACTIONS = [
  ["press", "Press", "", "a single press"],
  ["hold", "Hold (panic)", "", "holds the button: panic"],
  ["presses", "Triple press (panic)", "?n=3", "presses three times: panic"],
  ["fall", "Fall", "", "falls: a pre-alarm, then a man-down alarm unless cancelled with a press"],
  ["cut_wifi", "Cut Wi-Fi", "", "walks out of Wi-Fi range"],
  ["restore_wifi", "Restore Wi-Fi", "", "is back in range"],
  ["drain", "Drain battery", "?to_pct=10&over_s=10", "battery runs down to 10 % over 10 s"],
  ["power_cycle", "Power-cycle", "", "switched off and on again"],
];
const WORKERS_EVERY_MS = 15000;
const rows = new Map();  // device -> {row, cells}; kept, so a button is not replaced under the pointer
let devices = [];
let wearers = new Map();  // device -> worker of the desk's registry, as the board names them

function showError(message) {
  const p = document.getElementById("error");
  p.textContent = message || "";
  p.hidden = !message;
}

async function act(device, action, query, what) {
  try {
    await post("/api/simulator/devices/" + encodeURIComponent(device) + "/" + action + query);
    document.getElementById("done").textContent = device + " " + what + ".";
    showError("");
    refresh();
  } catch (e) { showError(e.message); }
}

function rowFor(d) {
  let entry = rows.get(d.device);
  if (entry) return entry;
  const cells = { worker: el("td"), state: el("td"), link: el("td"), battery: el("td"), felt: el("td") };
  const buttons = ACTIONS.map(([action, text, query, what]) => el("button", {
    type: "button", class: action, onclick: () => act(d.device, action, query, what) }, text));
  const row = el("tr", { dataset: { device: d.device } }, el("td", {}, d.device), cells.worker, cells.state,
    cells.link, cells.battery, cells.felt, el("td", { class: "actions" }, buttons.flatMap((b) => [b, " "])));
  entry = { row, cells, buttons };
  rows.set(d.device, entry);
  return entry;
}

function update(entry, d) {
  const c = entry.cells;
  c.worker.replaceChildren(...workerNodes(wearers.get(d.device) || null));
  c.state.textContent = (d.state || "").replaceAll("_", " ") + (d.working_alone ? " · working alone" : "");
  c.link.textContent = !d.powered ? "switched off" : !d.wifi ? "Wi-Fi cut" : d.online ? "online" : "connecting";
  c.battery.textContent = d.battery_pct + " %";
  c.felt.textContent = (d.felt || []).join(", ").replaceAll("_", " ") || "—";
  for (const b of entry.buttons) {
    if (b.classList.contains("cut_wifi")) b.hidden = !d.wifi;
    if (b.classList.contains("restore_wifi")) b.hidden = d.wifi;
  }
}

function render() {
  const q = document.querySelector("#filter input").value.trim().toLowerCase();
  const matching = devices.filter((d) => !q || d.device.toLowerCase().includes(q)
    || (wearers.get(d.device)?.name || "").toLowerCase().includes(q));
  const shown = matching.slice(0, SHOWN_AT_MOST);
  for (const d of shown) update(rowFor(d), d);
  const body = document.querySelector("#simulated tbody");
  const wanted = shown.map((d) => rows.get(d.device).row);
  if (wanted.length !== body.children.length || wanted.some((r, i) => body.children[i] !== r)) body.replaceChildren(...wanted);
  document.getElementById("shown").textContent = matching.length > shown.length
    ? "showing " + shown.length + " of " + matching.length + "; type to find the others" : "";
}

async function refresh() {
  try {
    devices = await api("/api/simulator/devices");
    render();
  } catch (e) { showError(e.message); }
}

async function loadWearers() {
  try {
    wearers = new Map((await api("/api/workers")).filter((w) => w.device).map((w) => [w.device, w]));
    render();
  } catch (e) { showError(e.message); }
}

document.getElementById("filter").addEventListener("submit", (ev) => ev.preventDefault());
document.querySelector("#filter input").addEventListener("input", render);
setInterval(refresh, REFRESH_MS);
setInterval(loadWearers, WORKERS_EVERY_MS);
loadWearers().then(refresh);
