"""The dashboard's HTML (kept in a module so the wheel ships it without package-data rules)."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Posyandu SPM dashboard</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1rem 2rem; color: #222; }
 form { display: flex; gap: .75rem; flex-wrap: wrap; align-items: end; margin-bottom: 1rem; }
 label { display: flex; flex-direction: column; font-size: .85rem; }
 input { padding: .3rem; }
 table { border-collapse: collapse; font-size: .8rem; margin-bottom: 1.5rem; }
 th, td { border: 1px solid #ccc; padding: .2rem .4rem; text-align: right; }
 th { background: #f3f3f3; position: sticky; top: 0; }
 td.text { text-align: left; }
 .scroll { overflow-x: auto; max-width: 100%; }
 #status { color: #a00; }
 .legend span { display: inline-block; margin-right: 1rem; }
 .legend i { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: middle; }
</style>
</head>
<body>
<h1>Posyandu SPM dashboard</h1>
<form id="controls">
 <label>Bearer token <input id="token" type="password" size="40" autocomplete="off"></label>
 <label>Region (code prefix) <input id="region" size="12" pattern="[0-9]*"></label>
 <label>Period (YYYY-MM, YYYY-Qn, YYYY) <input id="period" size="10"></label>
 <button id="load" type="submit">Show</button>
</form>
<p id="status" role="status"></p>
<h2>Indicators <small id="region-name"></small></h2>
<div class="scroll"><table id="indicators"></table></div>
<h2>Cross-agency matrix</h2>
<div class="scroll"><table id="matrix"></table></div>
<h2>Referrals by field and status over time</h2>
<div id="chart"></div>
<h2>Villages by open needs</h2>
<table id="ranking"></table>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
$("token").value = params.get("token") || sessionStorage.getItem("token") || "";
$("region").value = params.get("region") || "";
$("period").value = params.get("period") || new Date().toISOString().slice(0, 7);

function cell(value, kind, suppressed, threshold) {
  if (suppressed) return "x";
  if (value === null || value === undefined) return "\\u2014";
  if (kind === "rate") return (value * 100).toFixed(1) + "%";
  return String(value);
}

function fillTable(table, data, only) {
  const columns = only ? data.columns.filter(only) : data.columns;
  table.replaceChildren();
  const head = table.insertRow();
  for (const c of columns) { const th = document.createElement("th"); th.textContent = c.label; head.appendChild(th); }
  data.rows.forEach((row, i) => {
    const tr = table.insertRow();
    for (const c of columns) {
      const td = tr.insertCell();
      td.textContent = cell(row[c.key], c.kind, (row.suppressed || []).includes(c.key), data.suppression_threshold);
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
        title.textContent = m + " " + f + " " + g + ": " + n;
        rect.appendChild(title); svg.appendChild(rect);
      }
    });
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 30 + mi * perMonth); label.setAttribute("y", height + 15);
    label.setAttribute("font-size", "10"); label.textContent = m; svg.appendChild(label);
  });
  const legend = document.createElement("div");
  legend.className = "legend";
  legend.innerHTML = Object.keys(COLOURS).map((g) => '<span><i style="background:' + COLOURS[g] + '"></i>' + g
    + "</span>").join("") + "<span>bars per month: " + FIELDS.join(", ") + " (suppressed cells are not drawn)</span>";
  $("chart").replaceChildren(svg, legend);
}

async function api(path) {
  const query = new URLSearchParams({ period: $("period").value });
  if ($("region").value) query.set("region", $("region").value);
  const response = await fetch(path + "?" + query, { headers: { Authorization: "Bearer " + $("token").value } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

async function load(event) {
  if (event) event.preventDefault();
  sessionStorage.setItem("token", $("token").value);
  $("status").textContent = "Loading\\u2026";
  document.body.dataset.loaded = "false";
  try {
    const [indicators, matrix, timeline, ranking] = await Promise.all([
      api("/api/v1/indicators"), api("/api/v1/matrix"), api("/api/v1/indicators/referrals/timeline"),
      api("/api/v1/rankings/villages")]);
    $("region-name").textContent = (indicators.region_name || indicators.region) + ", " + indicators.period.label;
    fillTable($("indicators"), indicators);
    fillTable($("matrix"), matrix);
    drawChart(timeline);
    fillTable($("ranking"), ranking);
    $("status").textContent = "";
    document.body.dataset.loaded = "true";
  } catch (error) {
    $("status").textContent = "Could not load: " + error.message;
    document.body.dataset.loaded = "error";
  }
}

$("controls").addEventListener("submit", load);
if ($("token").value) load();
</script>
</body>
</html>
"""
