"""The page's inline style and script, and the Content-Security-Policy that allows only them."""

from __future__ import annotations

import base64
import hashlib

__all__ = ["SCRIPT", "STYLE", "policy"]


STYLE = """
:root { color-scheme: light dark; --bg: #f6f7f9; --card: #fff; --ink: #1c1f24;
  --muted: #5d6673; --line: #d9dde3; --ok: #1f7a3a; --bad: #b3261e; --warn: #8a5a00;
  --idle: #5d6673; --accent: #2f5fb3; }
@media (prefers-color-scheme: dark) { :root { --bg: #15171a; --card: #1e2126;
  --ink: #e7e9ec; --muted: #9aa3ae; --line: #343a42; --ok: #5cc27a; --bad: #ff8a80;
  --warn: #e0b050; --idle: #9aa3ae; --accent: #8fb3ff; } }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; padding: 24px; background: var(--bg); color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
h1 { margin: 0 0 4px; font-size: 24px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.muted { color: var(--muted); font-size: 13px; }
.counts { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.count { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 16px; min-width: 110px; }
.count b { display: block; font-size: 24px; }
.count.status-succeed b { color: var(--ok); }
.count.status-failed b, .count.status-error b { color: var(--bad); }
.count.status-not_started b, .count.status-unknown b { color: var(--warn); }
#filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin: 8px 0 16px; }
#filters button { font: inherit; padding: 5px 12px; border-radius: 16px; cursor: pointer;
  border: 1px solid var(--line); background: var(--card); color: var(--ink); }
#filters button[aria-pressed="true"] { background: var(--accent); border-color: var(--accent);
  color: #fff; }
#search { font: inherit; padding: 5px 10px; border-radius: 6px; border: 1px solid var(--line);
  background: var(--card); color: var(--ink); min-width: 240px; }
#slot-timeline { width: 100%; height: auto; background: var(--card);
  border: 1px solid var(--line); border-radius: 8px; }
#slot-timeline .area { fill: var(--accent); fill-opacity: .35; stroke: var(--accent);
  stroke-width: 1.5; }
#slot-timeline .grid { stroke: var(--line); stroke-width: 1; }
#slot-timeline .axis { stroke: var(--muted); stroke-width: 1; }
#slot-timeline text { fill: var(--muted); font-size: 12px; }
#gallery { display: grid; gap: 16px; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  overflow: hidden; display: flex; flex-direction: column; border-top-width: 4px; }
.card.status-succeed { border-top-color: var(--ok); }
.card.status-failed, .card.status-error { border-top-color: var(--bad); }
.card.status-not_started, .card.status-unknown { border-top-color: var(--warn); }
.media { display: flex; flex-direction: column; gap: 6px; padding: 8px; background: #0000000d; }
.media.none { color: var(--muted); font-size: 13px; align-items: center; padding: 18px; }
.player { margin: 0; }
.player video, .player img { display: block; width: 100%; max-height: 280px;
  object-fit: contain; background: #000; border-radius: 6px; image-rendering: auto; }
.player audio { width: 100%; }
.player figcaption { font-size: 12px; color: var(--muted); margin-top: 2px;
  overflow-wrap: anywhere; }
.player.missing figcaption::after { content: " · file missing"; color: var(--bad); }
.body { padding: 10px 14px 14px; }
.body header { display: flex; justify-content: space-between; align-items: baseline; gap: 8px; }
.key { margin: 0; font-size: 15px; overflow-wrap: anywhere; }
.badge { font-size: 12px; padding: 1px 8px; border-radius: 10px; white-space: nowrap;
  border: 1px solid currentColor; color: var(--idle); }
.badge.status-succeed { color: var(--ok); }
.badge.status-failed, .badge.status-error { color: var(--bad); }
.badge.status-not_started, .badge.status-unknown { color: var(--warn); }
.prompt { margin: 8px 0; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 9.5em;
  overflow: auto; }
.reason { margin: 8px 0; color: var(--bad); overflow-wrap: anywhere; white-space: pre-wrap; }
.reason .code { font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 8px 0 0;
  font-size: 12.5px; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
a { color: var(--accent); }
"""

SCRIPT = """
(function () {
  "use strict";
  var cards = Array.prototype.slice.call(document.querySelectorAll("#gallery .card"));
  var buttons = Array.prototype.slice.call(document.querySelectorAll("#filters button"));
  var search = document.getElementById("search");
  var empty = document.getElementById("empty");
  var shown = document.getElementById("shown");
  var current = "all";
  function textOf(card, selector) {
    var node = card.querySelector(selector);
    return node ? node.textContent.toLowerCase() : "";
  }
  function apply() {
    var needle = search.value.trim().toLowerCase();
    var visible = 0;
    cards.forEach(function (card) {
      var match = current === "all" || card.getAttribute("data-status") === current;
      if (match && needle) {
        match = textOf(card, ".key").indexOf(needle) !== -1 ||
          textOf(card, ".prompt").indexOf(needle) !== -1;
      }
      card.hidden = !match;
      if (match) { visible += 1; }
    });
    buttons.forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-filter") === current));
    });
    empty.hidden = visible !== 0;
    shown.textContent = String(visible);
  }
  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      current = button.getAttribute("data-filter");
      apply();
    });
  });
  search.addEventListener("input", apply);
  function markMissing(element) {
    var figure = element.closest("figure");
    if (figure) { figure.classList.add("missing"); }
  }
  Array.prototype.forEach.call(document.querySelectorAll("#gallery video, #gallery audio"),
    function (media) {
      if (media.error) { markMissing(media); }
      media.addEventListener("error", function () { markMissing(media); });
    });
  Array.prototype.forEach.call(document.querySelectorAll("#gallery img"), function (image) {
    if (image.complete && image.naturalWidth === 0) { markMissing(image); }
    image.addEventListener("error", function () { markMissing(image); });
  });
  apply();
}());
"""


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def policy() -> str:
    """Only the page's own style and script run; media only from beside the page."""
    return (
        "default-src 'none'; "
        f"style-src {_csp_hash(STYLE)}; "
        f"script-src {_csp_hash(SCRIPT)}; "
        "img-src 'self' file:; media-src 'self' file:; "
        "base-uri 'none'; form-action 'none'"
    )
