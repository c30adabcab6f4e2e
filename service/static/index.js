// The searches list: refresh the status of unfinished searches every two seconds.
"use strict";
(function () {
  const FINISHED = ["done", "failed", "cancelled"];
  async function refresh() {
    const open = [...document.querySelectorAll("[data-status-of]")].filter(n => !FINISHED.includes(n.textContent.trim()));
    if (!open.length) return;
    const offset = new URLSearchParams(location.search).get("offset") || 0;
    try {
      const page = await (await fetch("/search?limit=50&offset=" + offset)).json();
      for (const item of page.items) {
        const node = document.querySelector('[data-status-of="' + item.id + '"]');
        if (node) { node.textContent = item.status; node.className = "status status-" + item.status; }
      }
    } catch (e) { /* the next tick retries */ }
    setTimeout(refresh, 2000);
  }
  setTimeout(refresh, 2000);
})();
