// Shared helpers for the pages: number formatting and a colour ramp (viridis-like).
"use strict";
window.DF = window.DF || {};

DF.bytes = function (n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0, v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return (i === 0 ? v.toFixed(0) : v.toPrecision(3)) + " " + units[i];
};

// `digits` significant digits, trailing zeros after the point dropped; large values as plain integers
DF.num = function (x, digits) {
  if (x === null || x === undefined || Number.isNaN(Number(x))) return "–";
  x = Number(x);
  digits = digits || 4;
  if (Math.abs(x) >= Math.pow(10, digits)) return String(Math.round(x));
  let s = x.toPrecision(digits);
  if (s.includes(".") && !s.includes("e")) s = s.replace(/0+$/, "").replace(/\.$/, "");
  return s;
};

// five stops of viridis (https://bids.github.io/colormap/), linearly interpolated
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
DF.ramp = function (t) {
  if (t === null || Number.isNaN(t)) return "#cccccc";
  t = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(t)), f = t - i;
  const c = STOPS[i].map((a, j) => Math.round(a + f * (STOPS[i + 1][j] - a)));
  return "rgb(" + c.join(",") + ")";
};
DF.rampCss = "linear-gradient(90deg," + STOPS.map(s => "rgb(" + s.join(",") + ")").join(",") + ")";

DF.el = function (tag, attrs, text) {
  const svg = ["svg", "circle", "line", "text", "g", "rect", "path"].includes(tag);
  const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
};

// the page says whether the server wants a token in a JSON block (no inline script: the CSP forbids it)
DF.needsToken = function () {
  const flag = document.getElementById("needs-token");
  return flag ? JSON.parse(flag.textContent) === true : false;
};

DF.token = function () {
  let t = sessionStorage.getItem("devicefit-token");
  if (!t && DF.needsToken()) {
    t = window.prompt("API token for this server") || "";
    sessionStorage.setItem("devicefit-token", t);
  }
  return t;
};

document.querySelectorAll(".bytes[data-bytes]").forEach(n => { n.textContent = DF.bytes(Number(n.dataset.bytes)); });
