// A candidate's page: heatmap of per-layer settings (blocks x roles) and the latency breakdown bars.
"use strict";
(function () {
  const c = JSON.parse(document.getElementById("candidate-data").textContent);
  const box = document.getElementById("heatmap"), tooltip = document.getElementById("tooltip");
  const keySelect = document.getElementById("heat-key");

  const value = {
    bits: l => l.bits,
    sparsity: l => l.sparsity,
    rank: l => (l.rank === null ? 1 : l.rank / l.full_rank),
    latency_ms: l => l.latency_ms,
    memory_bytes: l => l.memory_bytes,
  };
  const label = {
    bits: l => l.bits + "b",
    sparsity: l => Math.round(l.sparsity * 100) + "%",
    rank: l => (l.rank === null ? "full" : "r" + l.rank),
    latency_ms: l => DF.num(l.latency_ms, 2),
    memory_bytes: l => DF.bytes(l.memory_bytes),
  };
  // for bits, rank and cost a high value is "heavy" (dark); sparsity is the other way round
  const heavyIsHigh = { bits: true, sparsity: false, rank: true, latency_ms: true, memory_bytes: true };

  function draw() {
    const key = keySelect.value;
    const roles = [...new Set(c.layers.map(l => l.role))];
    const blocks = [...new Set(c.layers.map(l => l.block === null ? "out" : l.block))];
    const vs = c.layers.map(value[key]).filter(v => v !== null), lo = Math.min(...vs), hi = Math.max(...vs);
    box.style.gridTemplateColumns = "70px repeat(" + roles.length + ", minmax(42px, 1fr))";
    const cells = [DF.el("div", { class: "head" }, "block")];
    roles.forEach(r => cells.push(DF.el("div", { class: "head" }, r)));
    for (const b of blocks) {
      cells.push(DF.el("div", { class: "head" }, String(b)));
      for (const r of roles) {
        const layer = c.layers.find(l => (l.block === null ? "out" : l.block) === b && l.role === r);
        if (!layer) { cells.push(DF.el("div", { class: "cell empty" })); continue; }
        const v = value[key](layer);
        let t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
        if (!heavyIsHigh[key]) t = 1 - t;
        const cell = DF.el("div", { class: "cell", "data-layer": layer.name }, label[key](layer));
        cell.style.background = DF.ramp(1 - t);
        cell.style.color = t > 0.45 ? "#fff" : "#1d2330";
        cell.addEventListener("mouseenter", () => show(cell, layer));
        cell.addEventListener("mouseleave", () => { tooltip.hidden = true; });
        cells.push(cell);
      }
    }
    box.replaceChildren(...cells);
  }

  function show(cell, l) {
    tooltip.replaceChildren(
      DF.el("div", {}, l.name),
      DF.el("div", {}, l.in_features + "→" + l.out_features + " · " + l.bits + "b" + (l.group_size ? "/g" + l.group_size : "") +
        (l.sparsity ? " · " + Math.round(l.sparsity * 100) + "% " + l.sparsity_pattern : "") +
        (l.rank !== null ? " · rank " + l.rank + "/" + l.full_rank : "")),
      DF.el("div", {}, DF.bytes(l.memory_bytes) + " · " + DF.num(l.latency_ms, 3) + " ms predicted"));
    const r = cell.getBoundingClientRect();
    tooltip.style.position = "fixed";
    tooltip.style.left = (r.right + 6) + "px";
    tooltip.style.top = r.top + "px";
    tooltip.hidden = false;
  }

  function bars() {
    const parts = Object.entries(c.latency_breakdown).sort((a, b) => b[1] - a[1]);
    const total = parts.reduce((s, p) => s + p[1], 0), max = Math.max(...parts.map(p => p[1]), 1e-12);
    const rows = parts.map(([kind, ms]) => {
      const row = DF.el("div", { class: "bar-row" });
      const fill = DF.el("div", { class: "bar-fill" });
      fill.style.width = (100 * ms / max) + "%";
      row.append(DF.el("div", {}, kind), DF.el("div", {}), DF.el("div", {}, DF.num(ms, 3) + " ms"));
      row.children[1].appendChild(fill);
      return row;
    });
    rows.push(DF.el("div", { class: "bar-row" }));
    rows[rows.length - 1].append(DF.el("b", {}, "total"), DF.el("div", {}), DF.el("b", {}, DF.num(total, 3) + " ms"));
    document.getElementById("latency-bars").replaceChildren(...rows);
  }

  keySelect.addEventListener("change", draw);
  draw();
  bars();
})();
