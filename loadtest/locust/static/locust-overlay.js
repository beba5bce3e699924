// Added to Locust's own page (loadtest/locust/webui.py): says on the start form that the scenario drives the
// load (instead of asking for users and a ramp), colours the SLA tab's verdicts, and links the live SLA page
// and the run's report. It only adds to Locust's page; if Locust's markup changes, the page works as before.
"use strict";
(() => {
  const COLOUR = { PASS: "#1e7e34", FAIL: "#b02a37", INCONCLUSIVE: "#a15c00", INSUFFICIENT: "#a15c00",
                   COLLECTING: "#1f5fa8", INVALID: "#a15c00" };
  // The start form's inputs, by the names Locust's bundle gives them (checked in loadtest/locust/compat.py).
  const LOAD_FIELDS = ["userCount", "spawnRate"];
  let doc = null;

  function loadNote() {
    const note = document.createElement("div");
    note.className = "lt-load-note";
    note.setAttribute("role", "note");
    const strong = document.createElement("strong");
    strong.textContent = "The scenario drives the load.";
    note.append(strong, document.createTextNode(` ${doc.scenario}: ${doc.load.text}. Users and ramp are not asked `
      + "for: press Start. "));
    const link = document.createElement("a");
    link.href = "/sla/view";
    link.textContent = "Watch it on the live SLA page";
    note.append(link);
    return note;
  }

  function startForm() {
    if (!doc || !doc.load.driven_by_scenario) return;
    const inputs = LOAD_FIELDS.map((name) => document.querySelector(`input[name="${name}"]`)).filter(Boolean);
    if (!inputs.length) return;
    const boxes = inputs.map((input) => input.closest(".MuiFormControl-root, .MuiTextField-root") || input.parentElement);
    boxes.forEach((box) => { box.style.display = "none"; box.dataset.ltHidden = "load"; });
    const form = inputs[0].closest("form") || boxes[0].parentElement;
    if (!form.querySelector(".lt-load-note")) boxes[0].before(loadNote());
  }

  function slaTab() {
    for (const table of document.querySelectorAll("table")) {
      const titles = Array.from(table.querySelectorAll("thead th"), (th) => th.textContent.trim());
      const at = titles.indexOf("Verdict");
      if (at < 0 || !titles.includes("Headroom")) continue;
      table.classList.add("lt-sla-table");
      for (const row of table.querySelectorAll("tbody tr")) {
        const cell = row.cells[at];
        if (!cell) continue;
        const word = cell.textContent.trim().split(/\s/)[0];
        const colour = COLOUR[word];
        if (colour && cell.dataset.ltVerdict !== word) {
          cell.dataset.ltVerdict = word;
          cell.style.background = colour;
          cell.style.color = "#fff";
          cell.style.fontWeight = "700";
        } else if (!colour && cell.dataset.ltVerdict) {
          delete cell.dataset.ltVerdict;
          cell.style.background = cell.style.color = cell.style.fontWeight = "";
        }
      }
    }
  }

  function links() {
    let bar = document.getElementById("lt-links");
    if (!bar) {
      bar = document.createElement("nav");
      bar.id = "lt-links";
      document.body.append(bar);
    }
    const items = [["/sla/view", "Live SLA view"]];
    if (doc && doc.report) items.push([doc.report.url, `Report of run ${doc.report.run}`]);
    const key = items.map((i) => i[0]).join("|");
    if (bar.dataset.key === key) return;
    bar.dataset.key = key;
    bar.replaceChildren(...items.map(([href, text]) => {
      const a = document.createElement("a");
      a.href = href;
      a.target = "_blank";
      a.textContent = text;
      return a;
    }));
  }

  function apply() {
    startForm();
    slaTab();
    links();
  }

  async function refresh() {
    try {
      const answer = await fetch("/sla?series=0", { cache: "no-store" });
      if (answer.ok) doc = await answer.json();
    } catch (err) {
      // The web UI went away (the run ended and Locust quit): nothing to add to a page that no longer updates.
    }
    apply();
    setTimeout(refresh, 2000);
  }

  new MutationObserver(() => apply()).observe(document.body, { childList: true, subtree: true, characterData: true });
  refresh();
})();
