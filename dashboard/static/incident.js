// One incident: what, who, where, and its timeline from the audit trail.
"use strict";
const id = location.pathname.split("/").pop();
const WORDS = { raised: "Raised", attached: "Another alarm joined", delivered: "Delivered to the device",
  acknowledged: "Acknowledged", escalated: "Escalated", notified: "Notified", resolved: "Resolved" };

function skew(s) { return s === null || s === undefined ? "unknown" : (s > 0 ? "+" : "") + s.toFixed(1) + " s"; }

Promise.all([api("/api/incidents/" + id), loadVocabulary()]).then(([{ incident: i, audit, messages, failed_notifications }]) => {
  document.getElementById("title").textContent = "Incident #" + i.id + ": " + label(i, vocab) + " — " + i.state;
  document.title = "lonewatch — incident #" + i.id;
  // replaceChildren would write a missing part out as the text "null".
  document.getElementById("summary").replaceChildren(...[
    el("div", { class: "who" }, workerNodes(i.worker)),
    el("div", { class: "facts" }, el("span", {}, "Device ", el("b", {}, deviceOf(i))), el("span", {}, place(i)),
      el("span", {}, "priority " + i.priority), el("span", {}, i.alarm_count + " alarm(s)")),
    i.resolution ? el("div", {}, "Resolved: " + resolutionLabel(i)) : null,
    i.note ? el("div", {}, "Note: " + i.note) : null].filter(Boolean));
  const entries = audit.map(a => ({ at: a.at, text: (WORDS[a.action] || a.action) + " — " + a.actor + (a.detail ? ": " + a.detail : ""), cls: "" }))
    .concat(failed_notifications.map(f => ({ at: f.time, cls: "failed",
      text: "Notification FAILED on " + f.channel + " (" + f.event + ", tier " + f.tier + ") after " + f.attempts + " attempts: " + f.last_error })))
    .sort((a, b) => a.at - b.at);
  document.getElementById("timeline").replaceChildren(...entries.map(e =>
    el("li", { class: e.cls }, el("time", {}, when(e.at)), e.text)));
  document.querySelector("#messages tbody").replaceChildren(...messages.map(m => el("tr", {},
    el("td", { "data-label": "Alarm id" }, m.msg_id), el("td", { "data-label": "Event time" }, when(m.event_time)),
    el("td", { "data-label": "Received" }, when(m.received_at)), el("td", { "data-label": "Clock skew" }, skew(m.skew_s)),
    el("td", { "data-label": "Location" }, m.body.location ? JSON.stringify(m.body.location) : ""))));
}).catch(e => { const bar = document.getElementById("error"); bar.textContent = e.message; bar.hidden = false; });
