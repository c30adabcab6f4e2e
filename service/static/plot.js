// Scatter plot of a Pareto front in SVG: x = latency or memory, y = quality, colour = the other cost,
// dashed budget lines, hover shows the recipe summary, click opens the candidate.
"use strict";
(function () {
  const W = 720, H = 420, M = { left: 70, right: 110, top: 20, bottom: 50 };

  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) { hi = lo + 1; }
    const raw = (hi - lo) / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map(m => m * mag).find(s => s >= raw) || raw;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
    return ticks;
  }

  function extent(values, extra) {
    const vs = values.concat(extra.filter(v => v !== null && v !== undefined));
    let lo = Math.min(...vs), hi = Math.max(...vs);
    if (lo === hi) { const d = Math.abs(lo) * 0.05 || 1; lo -= d; hi += d; }
    const pad = (hi - lo) * 0.08;
    return [lo - pad, hi + pad];
  }

  // detail: the body of GET /search/{id}; options.x: "latency" | "memory"
  DF.drawFront = function (svg, tooltip, detail, options) {
    const xIsLatency = (options.x || "latency") === "latency";
    const points = detail.front.filter(c => c.value !== null && c.latency_ms !== null && c.memory_bytes !== null);
    svg.replaceChildren();
    if (!points.length) {
      svg.appendChild(DF.el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "label" },
        detail.status === "queued" ? "waiting for a worker…" : "no candidates yet"));
      return 0;
    }
    const xOf = c => xIsLatency ? c.latency_ms : c.memory_bytes / 1e6;
    const cOf = c => xIsLatency ? c.memory_bytes : c.latency_ms;
    const budgetX = xIsLatency ? detail.budget_ms : (detail.budget_bytes ? detail.budget_bytes / 1e6 : null);
    const [x0, x1] = extent(points.map(xOf), [budgetX]);
    const [y0, y1] = extent(points.map(c => c.value), []);
    const sx = x => M.left + (x - x0) / (x1 - x0) * (W - M.left - M.right);
    const sy = y => H - M.bottom - (y - y0) / (y1 - y0) * (H - M.top - M.bottom);
    const cs = points.map(cOf), c0 = Math.min(...cs), c1 = Math.max(...cs);

    const grid = DF.el("g", { class: "grid" }), axis = DF.el("g", { class: "axis" });
    for (const t of niceTicks(x0, x1, 6)) {
      grid.appendChild(DF.el("line", { x1: sx(t), x2: sx(t), y1: M.top, y2: H - M.bottom }));
      axis.appendChild(DF.el("text", { x: sx(t), y: H - M.bottom + 18, "text-anchor": "middle" }, DF.num(t, 3)));
    }
    for (const t of niceTicks(y0, y1, 6)) {
      grid.appendChild(DF.el("line", { x1: M.left, x2: W - M.right, y1: sy(t), y2: sy(t) }));
      axis.appendChild(DF.el("text", { x: M.left - 8, y: sy(t) + 4, "text-anchor": "end" }, DF.num(t, 4)));
    }
    axis.appendChild(DF.el("line", { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom }));
    axis.appendChild(DF.el("line", { x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom }));
    svg.append(grid, axis);
    svg.appendChild(DF.el("text", { x: (M.left + W - M.right) / 2, y: H - 10, "text-anchor": "middle", class: "label" },
      xIsLatency ? "predicted latency (ms)" : "memory (MB)"));
    const better = detail.higher_is_better ? "higher is better" : "lower is better";
    svg.appendChild(DF.el("text", { x: 16, y: (M.top + H - M.bottom) / 2, "text-anchor": "middle", class: "label",
      transform: "rotate(-90 16 " + (M.top + H - M.bottom) / 2 + ")" }, (detail.metric || "quality") + " (" + better + ")"));

    if (budgetX !== null && budgetX !== undefined) {
      svg.appendChild(DF.el("line", { class: "budget", x1: sx(budgetX), x2: sx(budgetX), y1: M.top, y2: H - M.bottom }));
      svg.appendChild(DF.el("text", { class: "budget-label", x: sx(budgetX) + 4, y: M.top + 12 }, "budget"));
    }

    const ordered = points.slice().sort((a, b) => xOf(a) - xOf(b));
    for (const c of ordered) {
      const t = c1 > c0 ? (cOf(c) - c0) / (c1 - c0) : 0.5;
      const dot = DF.el("circle", { class: "point" + (c.feasible ? "" : " infeasible"), cx: sx(xOf(c)), cy: sy(c.value),
        r: 7, fill: DF.ramp(1 - t), "data-k": c.k });
      dot.addEventListener("mouseenter", () => show(tooltip, svg, dot, c));
      dot.addEventListener("mouseleave", () => { tooltip.hidden = true; });
      dot.addEventListener("click", () => { location.href = "/searches/" + detail.id + "/candidates/" + c.k; });
      svg.appendChild(dot);
    }
    legend(svg, xIsLatency ? "memory" : "latency", xIsLatency ? DF.bytes(c0) : DF.num(c0, 3) + " ms",
           xIsLatency ? DF.bytes(c1) : DF.num(c1, 3) + " ms");
    return points.length;
  };

  function legend(svg, name, lo, hi) {
    const x = W - M.right + 24, top = M.top + 10, h = 150;
    svg.appendChild(DF.el("text", { x: x, y: top - 2, class: "label" }, name));
    for (let i = 0; i < 20; i++) {
      svg.appendChild(DF.el("rect", { x: x, y: top + 6 + i * h / 20, width: 14, height: h / 20 + 0.5, fill: DF.ramp(1 - i / 19) }));
    }
    svg.appendChild(DF.el("text", { x: x + 18, y: top + 16, class: "label" }, lo));
    svg.appendChild(DF.el("text", { x: x + 18, y: top + h + 4, class: "label" }, hi));
  }

  function show(tooltip, svg, dot, c) {
    tooltip.replaceChildren(
      DF.el("div", {}, "#" + c.k + " · " + c.summary),
      DF.el("div", {}, (c.metric || "quality") + " " + DF.num(c.value, 4) + " · " + DF.num(c.latency_ms, 3) + " ms · " +
        DF.bytes(c.memory_bytes) + (c.feasible ? "" : " · over budget")));
    const box = svg.getBoundingClientRect(), parent = svg.parentElement.getBoundingClientRect();
    const r = dot.getBoundingClientRect();
    tooltip.style.left = Math.min(r.left - parent.left + 12, box.width - 300) + "px";
    tooltip.style.top = (r.top - parent.top + 12) + "px";
    tooltip.hidden = false;
  }
})();
