// Sortable table: click a header with data-key to sort its rows by that field (again to reverse).
"use strict";
(function () {
  DF.sortableTable = function (table, render) {
    let rows = [], key = null, dir = 1;
    const heads = table.querySelectorAll("th[data-key]");
    heads.forEach(th => th.addEventListener("click", () => {
      dir = key === th.dataset.key ? -dir : 1;
      key = th.dataset.key;
      heads.forEach(h => h.classList.remove("sorted-asc", "sorted-desc"));
      th.classList.add(dir > 0 ? "sorted-asc" : "sorted-desc");
      draw();
    }));
    function compare(a, b) {
      const x = a[key], y = b[key];
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * dir;
    }
    function draw() {
      const sorted = key ? rows.slice().sort(compare) : rows;
      table.tBodies[0].replaceChildren(...sorted.map(render));
    }
    return { update(newRows) { rows = newRows; draw(); } };
  };
})();
