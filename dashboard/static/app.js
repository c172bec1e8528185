// The desk page: one snapshot, then live changes over the WebSocket.
"use strict";
const incidents = new Map();
// Labels, priorities and resolution reasons come with the snapshot (contract/vocabulary.py).
let vocabulary = { type_labels: {}, cause_labels: {}, priorities: [], person_types: [], resolutions: {} };

function when(t) {
  if (!t) return "";
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

function cell(text) { const td = document.createElement("td"); td.textContent = text ?? ""; return td; }

function label(i) {
  let s = vocabulary.type_labels[i.type] || i.type;
  if (i.cause) s += " (" + (vocabulary.cause_labels[i.cause] || i.cause.replaceAll("_", " ")) + ")";
  return s;
}

function rank(priority) {
  const at = vocabulary.priorities.indexOf(priority);
  return at < 0 ? 0 : at;  // an unknown priority ranks as the most urgent
}

function useVocabulary(v) {
  vocabulary = v;
  const select = document.querySelector("#resolve-form select[name=reason]");
  select.replaceChildren(...Object.entries(v.resolutions).map(([value, text]) => {
    const option = document.createElement("option"); option.value = value; option.textContent = text; return option;
  }));
}

function render() {
  const open = [...incidents.values()].filter(i => i.state !== "resolved")
    .sort((a, b) => rank(a.priority) - rank(b.priority) || b.id - a.id);
  const closed = [...incidents.values()].filter(i => i.state === "resolved").sort((a, b) => b.id - a.id).slice(0, 50);
  const body = document.querySelector("#open tbody");
  body.replaceChildren(...open.map(i => {
    const tr = document.createElement("tr");
    tr.className = [i.state, i.priority || "critical", i.registered === false ? "unregistered" : ""].join(" ");
    tr.dataset.id = i.id;
    const zone = i.location && i.location.zone ? " / " + i.location.zone : "";
    tr.append(cell(i.id), cell(when(i.event_time || i.raised_at)), cell(label(i)),
      cell(i.device + (i.registered === false ? " — UNREGISTERED DEVICE" : "")),
      cell(i.site + zone), cell(i.state + (i.acknowledged_by ? " by " + i.acknowledged_by : "")));
    const actions = document.createElement("td");
    if (i.state === "raised") actions.append(button("Acknowledge", () => act(i.id, "ack").catch(showError)));
    actions.append(button("Resolve…", () => askResolve(i.id)));
    tr.append(actions);
    return tr;
  }));
  document.getElementById("open-count").textContent = open.length;
  document.getElementById("none-open").hidden = open.length > 0;
  document.querySelector("#closed tbody").replaceChildren(...closed.map(i => {
    const tr = document.createElement("tr");
    tr.append(cell(i.id), cell(when(i.raised_at)), cell(label(i)), cell(i.device), cell(when(i.resolved_at)), cell(vocabulary.resolutions[i.resolution] || i.resolution));
    return tr;
  }));
  document.title = (open.length ? "(" + open.length + ") " : "") + "lonewatch — alarms";
}

// An action that failed must say so on the page, not only in the console.
function showError(e) {
  const bar = document.getElementById("error");
  bar.textContent = "Could not do that: " + e.message;
  bar.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { bar.hidden = true; }, 15000);
}

function button(text, onclick) { const b = document.createElement("button"); b.textContent = text; b.onclick = onclick; return b; }

async function act(id, what, fields) {
  const r = await fetch("/api/incidents/" + id + "/" + what, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(fields || {}),
  });
  const data = await r.json().catch(() => ({ error: "HTTP " + r.status }));
  if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
  incidents.set(data.id, data); render();
}

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
  try {
    await act(dialog.dataset.id, "resolve", { reason: form.get("reason"), note: form.get("note") });
    dialog.close();
  } catch (e) {
    const err = document.getElementById("resolve-error"); err.textContent = e.message; err.hidden = false;
  }
});

function connect() {
  const link = document.getElementById("link");
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onopen = () => { link.textContent = "live"; link.className = "link up"; };
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "snapshot") {
      useVocabulary(msg.vocabulary);
      incidents.clear();
      msg.incidents.forEach(i => incidents.set(i.id, i));
      document.getElementById("operator").textContent = msg.operator;
    } else if (msg.type === "incident") {
      incidents.set(msg.incident.id, msg.incident);
    }
    render();
  };
  ws.onclose = () => {
    link.textContent = "connection lost — retrying"; link.className = "link down";
    setTimeout(connect, 2000);
  };
}
connect();
