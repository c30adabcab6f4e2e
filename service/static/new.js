// The new-search form: build a SearchSpec from the fields and POST it to /search (the same API as everyone).
"use strict";
(function () {
  const form = document.getElementById("search-form");
  const errorBox = document.getElementById("form-error");
  const value = id => { const n = document.getElementById(id); return n ? n.value.trim() : ""; };

  function spec() {
    const budget = {};
    if (value("max_latency")) budget.max_latency = value("max_latency");
    if (value("max_memory")) budget.max_memory = value("max_memory");
    const body = { model: value("model"), device: value("device"), workload: value("workload"), budget: budget,
                   sampler: value("sampler") };
    for (const key of ["trials", "seed", "calib_samples", "seq_len"]) {
      if (value(key) !== "") body[key] = Number(value(key));
    }
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const button = document.getElementById("submit");
    button.disabled = true;
    const headers = { "Content-Type": "application/json" };
    if (value("token")) headers.Authorization = "Bearer " + value("token");
    try {
      const response = await fetch("/search", { method: "POST", headers: headers, body: JSON.stringify(spec()) });
      const body = await response.json();
      if (response.status === 202) {
        if (value("token")) sessionStorage.setItem("devicefit-token", value("token"));
        location.href = body.links.page;
        return;
      }
      errorBox.textContent = body.detail || ("the server answered " + response.status);
    } catch (e) {
      errorBox.textContent = "could not reach the server: " + e;
    }
    errorBox.hidden = false;
    button.disabled = false;
  });
})();
