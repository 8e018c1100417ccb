"""The dashboard's HTML, style sheet and script (kept in a module so the wheel ships them without package-data
rules). The page is rendered per language with its words escaped; the script and styles are files of their own,
so the Content-Security-Policy allows no inline script or style at all. Every name from the API is set as text."""

from __future__ import annotations

import html
import json
from string import Template

from services.reporting.dashboard.labels import Lang, labels

_PAGE = Template("""<!doctype html>
<html lang="$lang">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<link rel="stylesheet" href="/dashboard/dashboard.css">
<script id="labels" type="application/json">$labels_json</script>
<script src="/dashboard/dashboard.js" defer></script>
</head>
<body data-refresh="$refresh" data-loaded="false" data-loads="0">
<h1>$title</h1>
<form id="controls">
 <label>$token <input id="token" type="password" size="40" autocomplete="off"></label>
 <label>$period <input id="period" size="10"></label>
 <button id="load" type="submit">$show</button>
</form>
<fieldset id="picker"><legend>$region</legend></fieldset>
<p id="status" role="status"></p>
<p id="updated"></p>
<h2>$indicators <small id="region-name"></small></h2>
<div class="scroll"><table id="indicators"></table></div>
<h2>$matrix</h2>
<div class="scroll"><table id="matrix"></table></div>
<h2>$timeline</h2>
<div id="chart"></div>
<h2>$ranking</h2>
<table id="ranking"></table>
</body>
</html>
""")


def render(lang: Lang, refresh_seconds: int) -> str:
    words = labels(lang)
    # JSON inside a script element: no "<" may end it early (the words are ours, but the rule costs nothing).
    as_json = json.dumps(words, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")
    return _PAGE.substitute({**{k: html.escape(v) for k, v in words.items() if k.isidentifier()},
                             "lang": lang, "refresh": str(refresh_seconds), "labels_json": as_json})


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1rem 2rem; color: #222; }
form, #picker { display: flex; gap: .75rem; flex-wrap: wrap; align-items: end; margin-bottom: 1rem; }
#picker { border: 1px solid #ddd; }
label { display: flex; flex-direction: column; font-size: .85rem; }
input, select { padding: .3rem; }
table { border-collapse: collapse; font-size: .8rem; margin-bottom: 1.5rem; }
th, td { border: 1px solid #ccc; padding: .2rem .4rem; text-align: right; }
th { background: #f3f3f3; position: sticky; top: 0; }
td.text { text-align: left; }
.scroll { overflow-x: auto; max-width: 100%; }
#status { color: #a00; }
#updated { color: #666; font-size: .8rem; }
.legend span { display: inline-block; margin-right: 1rem; }
.legend i { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: middle; }
"""

SCRIPT = r"""
"use strict";
const $ = (id) => document.getElementById(id);
const L = JSON.parse($("labels").textContent);
const lang = document.documentElement.lang;
const params = new URLSearchParams(location.search);
const refreshSeconds = Number(document.body.dataset.refresh) || 0;
let region = params.get("region");  // null: the caller's own region, "" : Indonesia
let timer = null;

function token() { return $("token").value; }

async function get(path, query) {
  const response = await fetch(path + "?" + new URLSearchParams(query),
    { headers: { Authorization: "Bearer " + token() } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

// --- the region picker: one select per level, from the caller's own regions down -------------------------------
function addSelect(list, withAll) {
  const select = document.createElement("select");
  select.dataset.parent = list.parent === null ? "" : list.parent;
  select.dataset.depth = $("picker").querySelectorAll("select").length;
  if (withAll) select.add(new Option(L.all, ""));
  for (const r of list.regions) select.add(new Option(r.name + " (" + (r.code || "ID") + ")", r.code));
  const label = document.createElement("label");
  const level = list.regions.length ? list.regions[0].level : "nation";
  label.append(L["level." + level] || level, select);
  $("picker").appendChild(label);
  select.addEventListener("change", () => choose(select));
  return select;
}

function dropBelow(depth) {
  for (const s of [...$("picker").querySelectorAll("select")]) {
    if (Number(s.dataset.depth) > depth) s.parentElement.remove();
  }
}

async function descend(code) {
  // The sub-regions of `code`, as a new select (none below a village).
  if (code.length >= 10) return null;
  const list = await get("/api/v1/regions", { parent: code });
  return list.regions.length ? addSelect(list, true) : null;
}

async function choose(select) {
  const depth = Number(select.dataset.depth);
  dropBelow(depth);
  // A region, or "(all)": the region whose parts the select lists. The first select's "" is Indonesia.
  const picked = select.value !== "" || depth === 0;
  region = picked ? select.value : select.dataset.parent;
  if (picked) await descend(select.value).catch(showError);
  await load();
}

async function buildPicker() {
  $("picker").querySelectorAll("label").forEach((l) => l.remove());
  const roots = await get("/api/v1/regions", {});
  const wanted = region ?? (roots.regions.length ? roots.regions[0].code : "");
  // Walk down to the wanted region, at each level choosing the option that is a prefix of it.
  let select = addSelect(roots, false);
  while (select) {
    const first = select.dataset.depth === "0";
    const option = [...select.options].find((o) => (o.value !== "" || first) && wanted.startsWith(o.value));
    if (!option) break;
    select.value = option.value;
    select = await descend(option.value);
    if (option.value === wanted) break;
  }
  region = wanted;
}

// --- the tables and the chart ----------------------------------------------------------------------------------
function cell(value, kind, suppressed) {
  if (suppressed) return "x";
  if (value === null || value === undefined) return "\u2014";
  if (kind === "rate") return (value * 100).toFixed(1) + "%";
  return String(value);
}

function fillTable(table, data) {
  table.replaceChildren();
  const head = table.insertRow();
  for (const c of data.columns) {
    const th = document.createElement("th");
    th.textContent = c.label;
    head.appendChild(th);
  }
  data.rows.forEach((row, i) => {
    const tr = table.insertRow();
    for (const c of data.columns) {
      const td = tr.insertCell();
      td.textContent = cell(row[c.key], c.kind, (row.suppressed || []).includes(c.key));
      td.dataset.row = i; td.dataset.key = c.key;
      if (c.kind === "text") td.className = "text";
    }
  });
}

const STATUS_GROUPS = { open: ["draft", "requested", "received"], accepted: ["accepted", "in-progress"],
  completed: ["completed"], closed: ["rejected", "failed", "cancelled"] };
const COLOURS = { open: "#f0ad4e", accepted: "#5bc0de", completed: "#5cb85c", closed: "#d9534f" };
const FIELDS = ["pendidikan", "kesehatan", "pekerjaan-umum", "perumahan-rakyat", "trantibumlinmas", "sosial"];

function drawChart(data) {
  const months = [...new Set(data.rows.map((r) => r.month))].sort();
  const group = (s) => Object.keys(STATUS_GROUPS).find((g) => STATUS_GROUPS[g].includes(s)) || "open";
  const totals = {};
  for (const r of data.rows) {
    const key = r.month + "|" + r.spm_field + "|" + group(r.status);
    totals[key] = (totals[key] || 0) + (r.referrals || 0);
  }
  const bar = 9, gap = 14, height = 180;
  const perMonth = FIELDS.length * bar + gap;
  const max = Math.max(1, ...months.flatMap((m) => FIELDS.map((f) =>
    Object.keys(STATUS_GROUPS).reduce((s, g) => s + (totals[m + "|" + f + "|" + g] || 0), 0))));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", Math.max(200, months.length * perMonth + 40));
  svg.setAttribute("height", height + 40);
  months.forEach((m, mi) => {
    FIELDS.forEach((f, fi) => {
      let y = height;
      for (const g of Object.keys(STATUS_GROUPS)) {
        const n = totals[m + "|" + f + "|" + g] || 0;
        if (!n) continue;
        const h = (n / max) * (height - 10);
        y -= h;
        const rect = document.createElementNS(ns, "rect");
        rect.setAttribute("x", 30 + mi * perMonth + fi * bar); rect.setAttribute("y", y);
        rect.setAttribute("width", bar - 1); rect.setAttribute("height", h); rect.setAttribute("fill", COLOURS[g]);
        const title = document.createElementNS(ns, "title");
        title.textContent = m + " " + f + " " + L["group." + g] + ": " + n;
        rect.appendChild(title); svg.appendChild(rect);
      }
    });
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 30 + mi * perMonth); label.setAttribute("y", height + 15);
    label.setAttribute("font-size", "10"); label.textContent = m; svg.appendChild(label);
  });
  const legend = document.createElement("div");
  legend.className = "legend";
  for (const g of Object.keys(COLOURS)) {
    const swatch = document.createElement("i");
    swatch.style.background = COLOURS[g];  // CSSOM, not a style attribute: the CSP allows it
    const span = document.createElement("span");
    span.append(swatch, L["group." + g]);
    legend.appendChild(span);
  }
  const note = document.createElement("span");
  note.textContent = L.bars.replace("{fields}", FIELDS.join(", "));
  legend.appendChild(note);
  $("chart").replaceChildren(svg, legend);
}

function showError(error) {
  $("status").textContent = L.failed + error.message;
  document.body.dataset.loaded = "error";
}

async function load() {
  clearTimeout(timer);
  const query = { period: $("period").value, lang: lang };
  if (region) query.region = region;
  try {
    const [indicators, matrix, timeline, ranking] = await Promise.all([
      get("/api/v1/indicators", query), get("/api/v1/matrix", query),
      get("/api/v1/indicators/referrals/timeline", query), get("/api/v1/rankings/villages", query)]);
    $("region-name").textContent = (indicators.region_name || indicators.region) + ", " + indicators.period.label;
    fillTable($("indicators"), indicators);
    fillTable($("matrix"), matrix);
    drawChart(timeline);
    fillTable($("ranking"), ranking);
    $("status").textContent = "";
    $("updated").textContent = L.updated + new Date().toLocaleTimeString(lang)
      + (refreshSeconds > 0 ? " \u00b7 " + L.every.replace("{n}", refreshSeconds) : "");
    document.body.dataset.loaded = "true";
    document.body.dataset.loads = Number(document.body.dataset.loads) + 1;
  } catch (error) {
    showError(error);
  }
  // Refresh by polling the API (a failed round is retried at the next one).
  if (refreshSeconds > 0) timer = setTimeout(load, refreshSeconds * 1000);
}

async function start(event) {
  if (event) event.preventDefault();
  sessionStorage.setItem("token", token());
  $("status").textContent = L.loading;
  document.body.dataset.loaded = "false";
  try {
    await buildPicker();
  } catch (error) {
    showError(error);
    return;
  }
  await load();
}

$("token").value = params.get("token") || sessionStorage.getItem("token") || "";
$("period").value = params.get("period") || new Date().toISOString().slice(0, 7);
$("controls").addEventListener("submit", start);
if (token()) start();
"""
