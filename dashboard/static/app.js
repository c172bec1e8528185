// The desk page: one snapshot, then live changes over the WebSocket.
"use strict";
const incidents = new Map();
const TYPE_LABEL = { panic: "PANIC", man_down: "MAN DOWN", overdue: "OVERDUE", technical: "technical" };

function when(t) {
  if (!t) return "";
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

function cell(text) { const td = document.createElement("td"); td.textContent = text ?? ""; return td; }

function label(i) {
  let s = TYPE_LABEL[i.type] || i.type;
  if (i.cause) s += " (" + i.cause.replace("_", " ") + ")";
  return s;
}

function render() {
  const open = [...incidents.values()].filter(i => i.state !== "resolved")
    .sort((a, b) => (a.priority === b.priority ? 0 : a.priority === "critical" ? -1 : 1) || b.id - a.id);
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
    tr.append(cell(i.id), cell(when(i.raised_at)), cell(label(i)), cell(i.device), cell(when(i.resolved_at)), cell(i.resolution));
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
