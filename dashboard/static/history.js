// History: filters in the address, so a filtered view can be bookmarked or sent; the CSV link uses the same ones.
"use strict";
const PER_PAGE = 50;
const form = document.getElementById("filters");
let page = 1;

function query() {
  const q = new URLSearchParams();
  for (const [key, value] of new FormData(form)) if (value) q.set(key, value);
  return q;
}

async function load() {
  const q = query();
  document.getElementById("csv").href = "/api/incidents.csv?" + q;
  history.replaceState(null, "", "/history?" + q);
  q.set("page", page); q.set("per_page", PER_PAGE);
  const r = await fetch("/api/incidents?" + q);
  if (r.status === 401) { location.href = "/login"; return; }
  const data = await r.json();
  const bar = document.getElementById("error");
  if (!r.ok) { bar.textContent = data.error; bar.hidden = false; return; }
  bar.hidden = true;
  const total = Number(r.headers.get("X-Total-Count"));
  document.querySelector("#history tbody").replaceChildren(...data.map(i => el("tr", {},
    el("td", { "data-label": "#" }, el("a", { href: "/incident/" + i.id }, "#" + i.id)),
    el("td", { "data-label": "Raised" }, when(i.raised_at)), el("td", { "data-label": "Type" }, label(i, vocab)),
    el("td", { "data-label": "Worker" }, workerNodes(i.worker)), el("td", { "data-label": "Device" }, deviceOf(i)),
    el("td", { "data-label": "Where" }, place(i)), el("td", { "data-label": "State" }, i.state),
    el("td", { "data-label": "Resolution" }, resolutionLabel(i)))));
  const last = Math.max(1, Math.ceil(total / PER_PAGE));
  document.getElementById("page-info").textContent = `page ${page} of ${last} (${total} incidents)`;
  document.getElementById("prev").disabled = page <= 1;
  document.getElementById("next").disabled = page >= last;
}

form.addEventListener("submit", (ev) => { ev.preventDefault(); page = 1; load(); });
document.getElementById("prev").onclick = () => { page -= 1; load(); };
document.getElementById("next").onclick = () => { page += 1; load(); };

(async () => {
  const [workers] = await Promise.all([api("/api/workers"), loadVocabulary()]);
  form.elements.type.append(...Object.entries(vocab.type_labels).map(([type, text]) => el("option", { value: type }, text)));
  form.elements.worker.append(...workers.map(w => el("option", { value: w.id }, w.name)));
  for (const [key, value] of new URLSearchParams(location.search)) if (form.elements[key]) form.elements[key].value = value;
  load();
})();
