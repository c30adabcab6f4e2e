// The candidate page's "try it" box: POST the prompt (a worker builds the candidate and generates), then
// poll the generation until it is done or failed, and show the text after the prompt or the reason.
"use strict";
(function () {
  const form = document.getElementById("try-form");
  if (!form) return;
  const $ = id => document.getElementById(id);
  const prompt = $("try-prompt"), tokens = $("try-tokens"), submit = $("try-submit"), status = $("try-status");
  const output = $("try-output"), echo = $("try-echo"), text = $("try-text"), error = $("try-error");
  const WAIT_NOTE_S = 20;  // pending this long: the worker may be busy, or missing

  async function detail(r) {  // the one-line reason every error of the API carries
    try { return (await r.json()).detail || r.statusText; } catch (e) { return r.statusText; }
  }

  async function post(body) {
    for (let attempt = 0; ; attempt++) {
      const headers = { "Content-Type": "application/json" };
      const token = DF.token();
      if (token) headers.Authorization = "Bearer " + token;
      const r = await fetch(form.dataset.url, { method: "POST", headers: headers, body: JSON.stringify(body) });
      if (r.status === 401 && attempt === 0) {  // the server wants a (new) token: ask once
        sessionStorage.setItem("devicefit-token", window.prompt("API token for this server") || "");
        continue;
      }
      if (r.status !== 202) throw new Error(await detail(r));
      return r.json();
    }
  }

  async function poll(url) {
    const started = Date.now();
    for (;;) {
      const r = await fetch(url);
      if (r.status === 200) return r.json();
      if (r.status !== 202) throw new Error(await detail(r));
      const waited = (Date.now() - started) / 1000;
      status.textContent = waited > WAIT_NOTE_S
        ? "still waiting for a worker (" + Math.round(waited) + " s): they may be busy with searches"
        : "generating…";
      const wait = Number(r.headers.get("Retry-After") || 1);
      await new Promise(resolve => setTimeout(resolve, 1000 * Math.min(wait, 0.5)));
    }
  }

  function fail(message) {
    error.textContent = message;
    error.hidden = false;
    status.textContent = "";
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    error.hidden = true;
    const body = { prompt: prompt.value, max_new_tokens: Number(tokens.value) };
    if (!body.prompt.trim()) return fail("Type a prompt first.");
    submit.disabled = true;
    status.textContent = "sending…";
    const started = performance.now();
    try {
      const accepted = await post(body);
      const result = await poll(accepted.links.self);
      if (result.status !== "done") return fail("The candidate could not generate: " + result.error);
      echo.textContent = body.prompt;
      text.textContent = result.text;
      output.hidden = false;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const speed = result.tokens_per_second ? ", " + DF.num(result.tokens_per_second, 3) + " tokens/s" : "";
      status.textContent = result.new_tokens + " new tokens in " + seconds + " s" + speed
        + (result.cached ? "" : " (candidate built first)");
    } catch (err) {
      fail(err.message);
    } finally {
      submit.disabled = false;
    }
  });
})();
