// The live SLA page: renders GET /sla once a second. It decides nothing: every word and number it shows
// comes from the document (loadtest/locust/live.py); a column or a section added there shows up here.
"use strict";
(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const NUMERIC = new Set(["observed", "provider", "gap", "limit", "samples"]);
  const COLOUR = { pass: "#1e7e34", fail: "#b02a37", inconclusive: "#a15c00", insufficient: "#a15c00",
                   collecting: "#1f5fa8", waiting: "#5f6b7a" };
  const LIMIT = "#c0392b", PER_SECOND = "#9b7fc0", ACTION = "#1f4e99";
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, v);
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, v);
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function seconds(s) {
    if (s === null || s === undefined) return "—";
    const r = Math.round(s);
    if (r < 120) return `${r} s`;
    // as loadtest/report/display.py's duration(): a zero remainder left out ("15 min", "4 h")
    if (r < 3 * 3600) return `${Math.floor(r / 60)} min` + (r % 60 ? ` ${r % 60} s` : "");
    const min = Math.floor((r % 3600) / 60);
    return `${Math.floor(r / 3600)} h` + (min ? ` ${min} min` : "");
  }

  // --- the parts of the page ------------------------------------------------------------------

  function renderHeader(d) {
    $("title").textContent = `SLA, live: ${d.scenario} against ${d.target}`;
    const model = d.model && d.model !== d.target ? `, model ${d.model}` : "";
    $("subtitle").textContent = `${d.description || ""} · ${d.target} (${d.api}${model}) at ${d.base_url || "—"}`;
    const word = d.verdict.provisional ? d.verdict.status : d.verdict.status.toUpperCase();
    document.title = `${word} · SLA · ${d.scenario}`;
  }

  function renderVerdict(d) {
    const v = d.verdict;
    const box = $("verdict");
    box.className = `banner ${v.class}${v.provisional && d.run.state === "running" ? " provisional" : ""}`;
    box.dataset.class = v.class;
    box.dataset.status = v.status;
    $("verdict-kind").textContent = v.provisional
      ? (d.run.state === "running" ? "verdict so far: provisional, the run is still going" : "verdict")
      : `final verdict of run ${d.run.number}`;
    $("verdict-headline").textContent = v.headline;
    const list = $("verdict-reasons");
    list.replaceChildren(...(v.reasons || []).map((r) => el("li", {}, r)));
  }

  function renderControls(d) {
    const state = d.run.state;
    const start = $("start"), stop = $("stop");
    start.hidden = !(state === "not started" || state === "finished");
    start.textContent = state === "finished" ? "Start a new run" : "Start";
    stop.hidden = state !== "running";
    $("load-note").textContent = `The scenario drives the load: ${d.load.text}. ${d.load.note}`;
    $("load-note").dataset.driven = String(Boolean(d.load.driven_by_scenario));
    $("stop-note").textContent = state === "running"
      ? "Stopping before the planned end leaves the run incomplete: it then proves nothing (exit 2)." : "";
  }

  function renderReport(d) {
    const box = $("report");
    if (!d.report) { box.hidden = true; return; }
    box.hidden = false;
    const link = $("report-link");
    link.href = d.report.url;
    link.textContent = `${d.report.url.split("/").pop()} of run ${d.report.run}`;
    const files = $("report-files");
    files.replaceChildren(document.createTextNode(" · also "));
    d.report.files.filter((f) => f.url !== d.report.url).forEach((f, i) => {
      if (i) files.append(document.createTextNode(", "));
      files.append(el("a", { href: f.url }, f.name));
    });
    files.append(document.createTextNode(` · in ${d.report.dir}`));
  }

  function renderState(d) {
    const run = d.run;
    $("run-state").textContent = run.state;
    $("run-text").textContent = run.number ? `run ${run.number}: ${run.text}` : run.text;
    const stage = run.stage;
    $("stage").textContent = stage ? stage.name : "—";
    $("stage-text").textContent = stage
      ? `${stage.index} of ${stage.count}, ${Math.round(stage.start_s)}–${Math.round(stage.end_s)} s; ${seconds(stage.left_s)} left in it`
      : (d.stages.length ? `stages: ${d.stages.map((s) => s.name).join(", ")}` : "");
    $("time-left").textContent = run.state === "running" ? seconds(run.left_s)
      : run.state === "not started" ? seconds(run.planned_s) : "—";
    $("time-text").textContent = `${seconds(run.elapsed_s)} of ${seconds(run.planned_s)} elapsed`;
    $("users").textContent = (run.users ?? 0).toLocaleString("en-US");
    $("users-text").textContent = d.load.model === "open"
      ? `requests in flight, at most ${d.load.peak_users.toLocaleString("en-US")}`
      : `peak ${d.load.peak_users.toLocaleString("en-US")}, as the scenario says`;
    const g = d.generator;
    const word = { ok: "healthy", strained: "strained", unknown: "—" }[g.status] || g.status;
    $("generator").textContent = word;
    $("generator").className = `v health-${g.status}`;
    $("generator-text").textContent = g.text;
  }

  function renderTable(d) {
    const table = $("thresholds");
    const head = table.tHead.rows[0];
    const titles = d.columns.map((c) => c.title).join("|");
    if (head.dataset.titles !== titles) {
      head.replaceChildren(...d.columns.map((c) => el("th", { "data-key": c.key }, c.title)));
      head.dataset.titles = titles;
    }
    const body = table.tBodies[0];
    body.replaceChildren(...d.thresholds.map((t) => {
      const tr = el("tr", { "data-id": t.id, "data-verdict": t.verdict });
      for (const c of d.columns) {
        const cls = c.key === "verdict" ? `verdict v-${t.verdict}` : NUMERIC.has(c.key) ? "num" : null;
        const td = el("td", { class: cls, "data-key": c.key }, t.cells[c.key] ?? "");
        if (c.key === "threshold" && t.doc && t.doc.detail) td.title = t.doc.detail;
        tr.append(td);
      }
      return tr;
    }));
  }

  function renderActions(d) {
    $("actions-block").hidden = !d.actions.length;
    $("actions").replaceChildren(...d.actions.map((a) => {
      const state = !a.done ? "planned" : a.ok ? "done" : "failed";
      const when = a.done ? `at ${a.at_s.toFixed(1)} s` : `planned at ${a.planned_at_s} s`;
      const outcome = a.done ? ` → ${a.outcome}` : "";
      return el("li", { class: state, "data-state": state }, `${when}: ${a.text}${outcome}`);
    }));
  }

  function renderSections(d) {
    const box = $("sections");
    box.replaceChildren(...(d.sections || []).flatMap((s) => {
      const parts = [el("h2", {}, s.title)];
      if (s.columns && s.rows) {
        const table = el("table");
        const head = el("tr");
        s.columns.forEach((c) => head.append(el("th", {}, c.title)));
        table.append(el("thead"), el("tbody"));
        table.tHead.append(head);
        s.rows.forEach((r) => {
          const tr = el("tr");
          s.columns.forEach((c) => tr.append(el("td", {}, r[c.key] ?? "")));
          table.tBodies[0].append(tr);
        });
        parts.push(table);
      }
      if (s.note) parts.push(el("p", { class: "small" }, s.note));
      return parts;
    }));
  }

  // --- charts ----------------------------------------------------------------------------------

  function niceStep(range, count) {
    const raw = range / Math.max(1, count);
    const mag = 10 ** Math.floor(Math.log10(raw));
    const norm = raw / mag;
    return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  }

  // A short run's chart spans its whole plan. A longer one spans its time so far and as much again (a
  // minute at least, the plan at most), so the last seconds of an hours-long run stay readable.
  const WHOLE_PLAN_S = 60;

  function timeSpan(run, points) {
    const seen = Math.max(run.elapsed_s || 0, ...points.map((p) => p[0]));
    const planned = run.planned_s || 1;
    if (planned <= WHOLE_PLAN_S) return Math.max(planned, seen);
    return Math.max(seen, Math.min(planned, Math.max(WHOLE_PLAN_S, 2 * seen)));
  }

  function chart(d, c) {
    const W = 960, H = 250, L = 64, R = 18, T = 24, B = 38;
    const run = d.run;
    const points = c.points || [], perSecond = c.per_second || [];
    const xMax = timeSpan(run, points);
    const values = points.concat(perSecond).map((p) => p[1]);
    const highest = Math.max(c.limit * 1.25, ...values.map((v) => v * 1.08));
    const yMax = Math.min(highest, c.limit * 4);    // a timeout far above keeps the limit readable
    const clipped = highest > yMax;
    const inSeconds = yMax > 2000;
    const x = (t) => L + (W - L - R) * Math.min(1, Math.max(0, t / xMax));
    const y = (v) => T + (H - T - B) * (1 - Math.min(v, yMax) / yMax);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "data-id": c.id,
                              "aria-label": `${c.title}: value over time against its limit ${c.limit_text}` });
    const clipId = `clip-${c.id}`;
    const defs = svg("defs");
    const clip = svg("clipPath", { id: clipId });
    clip.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B }));
    defs.append(clip);
    root.append(defs);

    // stages: bands, the threshold's own stage tinted
    d.stages.forEach((s, i) => {
      if (s.start_s >= xMax) return;             // not in sight yet
      const own = c.stage === s.name;
      root.append(svg("rect", { x: x(s.start_s), y: T, width: Math.max(0, x(s.end_s) - x(s.start_s)),
                                height: H - T - B, fill: own ? "#e3ecfa" : i % 2 ? "#ffffff" : "#f3f3f3",
                                class: "stage-band", "data-stage": s.name }));
      root.append(svg("text", { x: (x(s.start_s) + x(s.end_s)) / 2, y: T - 8, "text-anchor": "middle",
                                "font-size": 11, fill: own ? "#1f4e99" : "#555", "font-weight": own ? 700 : 400 },
                      s.name));
    });

    // axes and grid
    const step = niceStep(yMax, 5);
    for (let v = 0; v <= yMax + 1e-9; v += step) {
      root.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e2e2e2" }));
      const label = inSeconds ? +(v / 1000).toPrecision(6) : +v.toPrecision(6);
      root.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#333" },
                      label.toLocaleString("en-US")));
    }
    const xStep = niceStep(xMax, 10);
    for (let t = 0; t <= xMax + 1e-9; t += xStep) {
      root.append(svg("text", { x: x(t), y: H - B + 15, "text-anchor": "middle", "font-size": 11, fill: "#333" },
                      +t.toPrecision(6)));
    }
    root.append(svg("text", { x: 14, y: T + (H - T - B) / 2, "font-size": 11, fill: "#333", "text-anchor": "middle",
                              transform: `rotate(-90 14 ${T + (H - T - B) / 2})` },
                    `latency (${inSeconds ? "s" : "ms"})`));
    root.append(svg("text", { x: L + (W - L - R) / 2, y: H - 6, "font-size": 11, fill: "#333",
                              "text-anchor": "middle" }, "time since start (s)"));
    root.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#999" }));

    // the scenario's actions, the run's end if it came early, and now
    d.actions.forEach((a) => {
      if (a.at_s > xMax) return;
      const at = x(a.at_s);
      root.append(svg("line", { x1: at, x2: at, y1: T, y2: H - B, stroke: a.done ? ACTION : "#999",
                                "stroke-width": a.done ? 1.6 : 1, "stroke-dasharray": a.done ? "6 3" : "2 4",
                                class: "action-mark", "data-done": String(a.done) }));
      root.append(svg("text", { x: at - 4, y: T + 4, "font-size": 10, fill: a.done ? ACTION : "#777",
                                "text-anchor": "end", transform: `rotate(-90 ${at - 4} ${T + 4})` }, a.text));
    });
    const end = run.aborted_at_s ?? ((run.state === "finished" || run.state === "stopping")
      && run.elapsed_s < run.planned_s - 0.5 ? run.elapsed_s : null);
    if (end !== null && end !== undefined) {
      const at = x(end);
      const word = run.aborted_at_s != null ? "aborted" : "stopped";
      root.append(svg("line", { x1: at, x2: at, y1: T, y2: H - B, stroke: run.aborted_at_s != null ? "#b02a37" : "#333",
                                "stroke-width": 2.2, class: "end-mark" }));
      root.append(svg("text", { x: at + 4, y: H - B - 6, "font-size": 11, fill: "#333" }, `${word} at ${seconds(end)}`));
    }
    if (run.state === "running") {
      const at = x(run.elapsed_s);
      root.append(svg("line", { x1: at, x2: at, y1: T, y2: H - B, stroke: "#666", "stroke-dasharray": "1 3" }));
    }

    // the limit, over the threshold's own window
    const [a, b] = c.window || [0, xMax];
    if (a < xMax) {                               // a stage still out of sight has no limit line yet
      root.append(svg("line", { x1: x(a), x2: x(b), y1: y(c.limit), y2: y(c.limit), stroke: LIMIT, "stroke-width": 2,
                                "stroke-dasharray": "8 4", class: "limit-line" }));
      root.append(svg("text", { x: x(b) - 4, y: y(c.limit) - 5, "text-anchor": "end", "font-size": 11, fill: LIMIT,
                                "font-weight": 600 }, `limit ${c.limit_text}`));
    }

    const line = (pts, attrs) => {
      if (!pts.length) return;
      const path = pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
      root.append(svg("polyline", { points: path, fill: "none", "clip-path": `url(#${clipId})`, ...attrs }));
    };
    line(perSecond, { stroke: PER_SECOND, "stroke-width": 1.2, class: "per-second" });
    const colour = COLOUR[c.verdict] || "#333";
    line(points, { stroke: colour, "stroke-width": 2.6, class: "judged" });
    if (points.length) {
      const [t, v] = points[points.length - 1];
      root.append(svg("circle", { cx: x(t), cy: y(v), r: 4, fill: colour }));
    }
    return { root, clipped, yMax, inSeconds };
  }

  function renderCharts(d) {
    const box = $("charts");
    if (!d.charts.length) {
      box.replaceChildren(el("p", { class: "small" }, "This scenario has no latency threshold to chart."));
      return;
    }
    box.replaceChildren(...d.charts.map((c) => {
      const { root, clipped, yMax, inSeconds } = chart(d, c);
      const wrap = el("div", { class: "chart", "data-id": c.id });
      const h = el("h3", {}, c.title);
      const tag = el("span", { class: "tag", style: `background:${COLOUR[c.verdict] || "#555"}` },
                     (d.thresholds.find((t) => t.id === c.id) || { cells: {} }).cells.verdict || c.verdict);
      h.append(tag);
      const legend = el("p", { class: "legend" });
      const item = (cls, colour, text) => {
        const span = el("span");
        span.append(el("i", { class: `sw ${cls}`, style: `border-color:${colour}` }), document.createTextNode(text));
        legend.append(span);
      };
      item("", COLOUR[c.verdict] || "#333", "the value as judged (its selection so far)");
      if (c.per_second_label) item("thin", PER_SECOND, c.per_second_label);
      item("dash", LIMIT, `limit ${c.limit_text}`);
      if (d.actions.length) item("dash", ACTION, "the scenario's actions");
      if (clipped) {
        const top = inSeconds ? `${+(yMax / 1000).toPrecision(3)} s` : `${Math.round(yMax)} ms`;
        legend.append(el("span", {}, `values above ${top} run off the top`));
      }
      wrap.append(h, legend, root);
      return wrap;
    }));
  }

  function render(d) {
    renderHeader(d);
    renderVerdict(d);
    renderControls(d);
    renderReport(d);
    renderState(d);
    renderTable(d);
    renderCharts(d);
    renderActions(d);
    renderSections(d);
    $("updated").textContent = `Updated ${new Date().toLocaleTimeString("en-GB")}; refreshed every second.`;
    document.body.dataset.state = d.run.state;
    document.body.dataset.run = String(d.run.number);
  }

  // --- talking to Locust -------------------------------------------------------------------------

  async function poll() {
    try {
      const answer = await fetch("/sla", { cache: "no-store" });
      if (answer.ok) render(await answer.json());
    } catch (err) {
      $("updated").textContent = `The web UI does not answer (${err.message}); trying again.`;
    }
    setTimeout(poll, 1000);
  }

  async function post(path) {
    try {
      const answer = await fetch(path, { method: "POST", body: new URLSearchParams() });
      const said = await answer.json().catch(() => ({}));
      if (said.success === false) $("stop-note").textContent = said.message || `${path} was refused`;
    } catch (err) {
      $("stop-note").textContent = `${path} failed: ${err.message}`;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("start").addEventListener("click", () => post("/swarm"));
    $("stop").addEventListener("click", () => post("/stop"));
    poll();
  });
})();
