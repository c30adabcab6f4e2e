// A search's page: poll GET /search/{id} until it finishes; redraw progress, plot and table.
"use strict";
(function () {
  const FINISHED = ["done", "failed", "cancelled"];
  let detail = JSON.parse(document.getElementById("search-data").textContent);
  const svg = document.getElementById("front-plot"), tooltip = document.getElementById("tooltip");
  const xAxis = document.getElementById("x-axis");
  document.getElementById("metric-head").textContent = (detail.metric || "quality") +
    (detail.higher_is_better === null ? "" : detail.higher_is_better ? " ↑" : " ↓");

  const table = DF.sortableTable(document.getElementById("front-table"), c => {
    const tr = DF.el("tr", { "data-k": c.k });
    const link = DF.el("a", { href: "/searches/" + detail.id + "/candidates/" + c.k }, "#" + c.k);
    const cells = [link, c.summary, DF.num(c.value, 5), DF.num(c.latency_ms, 3), DF.bytes(c.memory_bytes),
                   c.feasible ? "yes" : "no"];
    for (const v of cells) { const td = DF.el("td"); if (v instanceof Node) td.appendChild(v); else td.textContent = v; tr.appendChild(td); }
    tr.children[1].className = "wrap";
    return tr;
  });

  function render() {
    const status = document.getElementById("status");
    status.textContent = detail.status;
    status.className = "status status-" + detail.status;
    const p = detail.progress;
    document.getElementById("progress-bar").style.width = (100 * (detail.status === "done" ? 1 : p.fraction)) + "%";
    document.getElementById("progress-text").textContent = p.completed + " / " + p.total + " trials" +
      (p.infeasible ? " · " + p.infeasible + " over budget" : "") + (p.failed ? " · " + p.failed + " failed" : "");
    const err = document.getElementById("job-error");
    err.hidden = !detail.error; err.textContent = detail.error || "";
    document.getElementById("cancel").hidden = FINISHED.includes(detail.status);
    const drawn = DF.drawFront(svg, tooltip, detail, { x: xAxis.value });
    svg.dataset.points = drawn;
    document.getElementById("plot-note").textContent = drawn ? drawn + " candidates on the front" : "";
    document.getElementById("empty-front").hidden = detail.front.length > 0;
    table.update(detail.front);
  }

  async function poll() {
    if (FINISHED.includes(detail.status)) return;
    try {
      const r = await fetch("/search/" + detail.id);
      if (r.ok) { detail = await r.json(); render(); }
    } catch (e) { /* retry on the next tick */ }
    if (!FINISHED.includes(detail.status)) setTimeout(poll, 1000);
  }

  document.getElementById("cancel").addEventListener("click", async (event) => {
    event.target.disabled = true;
    const headers = {};
    const token = DF.token();
    if (token) headers.Authorization = "Bearer " + token;
    const r = await fetch("/search/" + detail.id, { method: "DELETE", headers: headers });
    const body = await r.json();
    if (r.ok) { detail = body; render(); } else { alert(body.detail); }
    event.target.disabled = false;
  });
  xAxis.addEventListener("change", render);
  render();
  setTimeout(poll, 1000);
})();
