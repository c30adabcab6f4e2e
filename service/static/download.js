// The download button: a worker builds the archive on first request (202 "preparing"); poll until it is
// ready, then let the browser fetch it.
"use strict";
(function () {
  const link = document.getElementById("download"), note = document.getElementById("download-status");
  if (!link) return;
  const format = document.getElementById("download-format");
  if (format) {
    format.addEventListener("change", function () {  // another format is another archive
      link.href = format.dataset.base + (format.value ? "?format=" + encodeURIComponent(format.value) : "");
      link.dataset.ready = "";
      note.hidden = true;
    });
  }
  let busy = false;
  link.addEventListener("click", async function (event) {
    if (link.dataset.ready === "1") return;  // ready: the browser downloads it
    event.preventDefault();
    if (busy) return;
    busy = true;
    note.hidden = false;
    note.textContent = "preparing…";
    try {
      for (;;) {
        const stop = new AbortController();
        const r = await fetch(link.href, { signal: stop.signal });
        if (r.status === 200) { stop.abort(); break; }  // do not read the archive here
        if (r.status !== 202) {
          let msg = r.statusText;
          try { msg = (await r.json()).detail; } catch (e) { /* not JSON */ }
          throw new Error(msg);
        }
        const wait = Number(r.headers.get("Retry-After") || 2);
        await new Promise(resolve => setTimeout(resolve, 1000 * wait));
      }
      note.textContent = "ready";
      link.dataset.ready = "1";
      link.click();
    } catch (err) {
      if (err.name !== "AbortError") note.textContent = "download failed: " + err.message;
    } finally {
      busy = false;
    }
  });
})();
