(function () {
  "use strict";
  // Sort, filter and expand only: the script reads attributes and text and sets `hidden` and
  // `open`; it never writes markup, so nothing of the report can become code.
  function each(root, selector, fn) {
    Array.prototype.forEach.call(root.querySelectorAll(selector), fn);
  }
  each(document, ".js-only", function (el) { el.hidden = false; });

  function sortKey(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) { raw = cell.textContent.trim(); }
    var num = Number(raw);
    return raw !== "" && !isNaN(num) ? num : raw.toLowerCase();
  }
  function sortBy(th) {
    var table = th.closest("table");
    var body = table.tBodies[0];
    var col = th.cellIndex;
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    each(table, "th[aria-sort]", function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = sortKey(a.cells[col]), y = sortKey(b.cells[col]);
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  each(document, "table.sortable thead th", function (th) {
    th.tabIndex = 0;
    th.title = "sort by this column";
    th.addEventListener("click", function () { sortBy(th); });
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(th); }
    });
  });

  each(document, "section.suite", function (suite) {
    var verdict = suite.querySelector("select.verdict-filter");
    var owner = suite.querySelector("select.owner-filter");
    function apply() {
      var v = verdict ? verdict.value : "";
      var o = owner ? owner.value : "";
      each(suite, "[data-verdict]", function (el) {
        var okV = v === "" || (v === "not-pass" ? el.getAttribute("data-verdict") !== "pass"
                                                : el.getAttribute("data-verdict") === v);
        var okO = o === "" || el.getAttribute("data-owner") === o;
        el.hidden = !(okV && okO);
      });
    }
    if (verdict) { verdict.addEventListener("change", apply); }
    if (owner) { owner.addEventListener("change", apply); }
  });

  var worse = document.getElementById("only-worse");
  if (worse) {
    worse.addEventListener("change", function () {
      each(document, "tr[data-worse='0']", function (tr) { tr.hidden = worse.checked; });
    });
  }
  function expand(open) {
    each(document, "details", function (d) { d.open = open; });
  }
  var more = document.getElementById("expand-all");
  var less = document.getElementById("collapse-all");
  if (more) { more.addEventListener("click", function () { expand(true); }); }
  if (less) { less.addEventListener("click", function () { expand(false); }); }
}());
