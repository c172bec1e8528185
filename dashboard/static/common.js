// Shared by the desk's pages. Everything a device or a person typed goes in as text, never as markup.
"use strict";

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function when(t) {
  if (!t) return "";
  const d = new Date(t * 1000);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

function clock(t) { return t ? new Date(t * 1000).toLocaleTimeString() : ""; }

function age(t, now) {
  const s = Math.max(0, Math.floor((now || Date.now() / 1000) - t));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
  if (s < 86400) return Math.floor(s / 3600) + " h " + String(Math.floor(s / 60) % 60).padStart(2, "0") + " min";
  return Math.floor(s / 86400) + " d " + Math.floor(s / 3600) % 24 + " h";
}

function label(i, vocabulary) {
  const v = vocabulary || { type_labels: {}, cause_labels: {} };
  let s = v.type_labels[i.type] || i.type;
  if (i.cause) s += " (" + (v.cause_labels[i.cause] || i.cause.replaceAll("_", " ")) + ")";
  return s;
}

// The words of contract/vocabulary.py, as the board gets them with its snapshot.
let vocab = null;
async function loadVocabulary() {
  vocab = await api("/api/vocabulary");
  return vocab;
}

function resolutionLabel(i) {
  if (!i.resolution) return "";
  return ((vocab && vocab.resolutions[i.resolution]) || i.resolution) + (i.resolved_by ? " by " + i.resolved_by : "");
}

function place(i) {
  const parts = [i.site];
  if (i.session && i.session.place) parts.push(i.session.place);
  if (i.location) for (const [k, v] of Object.entries(i.location)) parts.push(k + " " + v);
  return parts.join(" · ");
}

// The worker beside the device: a name and a number to call, or a loud warning.
function workerNodes(worker) {
  if (!worker) return [el("span", { class: "unassigned" }, "NO WORKER ASSIGNED — find out who wears this device")];
  if (!worker.phone) return [el("strong", { class: "worker" }, worker.name), " (no phone given)"];
  return [el("strong", { class: "worker" }, worker.name), " ",
          el("a", { class: "phone", href: "tel:" + worker.phone.replace(/[^0-9+]/g, "") }, "☎ " + worker.phone)];
}

// The device of an incident, or "none" for a session registered without one.
function deviceOf(i) { return i.session && !i.session.device ? "none" : i.device; }

async function api(path, options) {
  const r = await fetch(path, options);
  if (r.status === 401) { location.href = "/login"; throw new Error("logged out"); }
  const data = await r.json().catch(() => ({ error: "HTTP " + r.status }));
  if (!r.ok) { const e = new Error(data.error || ("HTTP " + r.status)); e.data = data; throw e; }
  return data;
}

async function post(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
}

// Pages only some desks have (the demo's simulator page) join the menu of every page.
async function extendMenu() {
  const nav = document.querySelector("header nav");
  if (!nav) return;
  for (const page of await api("/api/nav")) {
    if ([...nav.querySelectorAll("a")].some((a) => a.getAttribute("href") === page.href)) continue;
    nav.append(" ", el("a", { href: page.href, "aria-current": location.pathname === page.href ? "page" : null }, page.label));
  }
}
// Only the optional pages are missing if this fails; the page itself shows its own errors.
extendMenu().catch((e) => console.warn("menu: " + e.message));
