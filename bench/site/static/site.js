// recbench results site: sort tables by a column, filter leaderboard tables and rows.
// No charting here: figures are the leaderboard's PNGs.
(function () {
  "use strict";

  function sortValue(td) {
    var v = td.getAttribute("data-sort");
    var n = parseFloat(v);
    return isNaN(n) || !/^-?\d/.test(v) ? null : n;
  }

  // Numbers in order (ascending or descending), blank and text cells always last.
  function sortTable(table, column, th) {
    var descending = th.getAttribute("aria-sort") === "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = sortValue(a.cells[column]), y = sortValue(b.cells[column]);
      if (x === null && y === null) {
        var s = a.cells[column].getAttribute("data-sort"), t = b.cells[column].getAttribute("data-sort");
        if (s === "" || t === "") { return (s === "") - (t === ""); }
        return descending ? t.localeCompare(s) : s.localeCompare(t);
      }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      return descending ? y - x : x - y;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, column) {
      th.querySelector("button").addEventListener("click", function () {
        sortTable(table, column, th);
      });
    });
  });

  var form = document.getElementById("filters");
  if (!form) { return; }
  var sectionFields = ["suite", "dataset", "split", "metric"];

  function applyFilters() {
    var want = {};
    ["suite", "dataset", "split", "metric", "library", "side"].forEach(function (name) {
      want[name] = form.elements[name].value;
    });
    var shown = 0, total = 0;
    document.querySelectorAll("section.board").forEach(function (section) {
      total += 1;
      var match = sectionFields.every(function (f) {
        return !want[f] || section.getAttribute("data-" + f) === want[f];
      });
      var visibleRows = 0, rows = section.querySelectorAll("tbody tr");
      rows.forEach(function (tr) {
        var ok = (!want.library || tr.getAttribute("data-library") === want.library) &&
                 (!want.side || tr.getAttribute("data-side") === want.side);
        tr.hidden = !ok;
        if (ok) { visibleRows += 1; }
      });
      // a table without rows (every trial skipped) shows unless a row filter is set
      var rowFilter = want.library || want.side;
      section.hidden = !match || (visibleRows === 0 && (rows.length > 0 || rowFilter));
      if (!section.hidden) { shown += 1; }
    });
    document.getElementById("filter-count").textContent = shown + " of " + total + " tables";
    var params = new URLSearchParams();
    Object.keys(want).forEach(function (k) { if (want[k]) { params.set(k, want[k]); } });
    var hash = params.toString();
    history.replaceState(null, "", hash ? "#" + hash : location.pathname);
  }

  // Filters survive a reload and can be linked: index.html#dataset=ml-100k&library=implicit
  if (location.hash.indexOf("=") > 0) {
    new URLSearchParams(location.hash.slice(1)).forEach(function (value, key) {
      if (form.elements[key]) { form.elements[key].value = value; }
    });
  }
  form.addEventListener("change", applyFilters);
  // no inline handler (the Content-Security-Policy allows none): filtering never submits
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  form.addEventListener("reset", function () { setTimeout(applyFilters, 0); });
  applyFilters();
})();
