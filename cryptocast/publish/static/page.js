// The horizon selector: reads the numbers from the embedded copy of forecast.json (browsers block
// reading other files from file://) and writes the answer the way page.py does: cents, then the unit.
(function () {
  "use strict";
  var doc = JSON.parse(document.getElementById("forecast-data").textContent);
  var select = document.getElementById("horizon");
  if (!doc.forecast || !select) { return; }
  function amount(v) {
    var parts = Math.abs(v).toFixed(2).split(".");
    return (v < 0 ? "-" : "") + parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",") + "." + parts[1];
  }
  function money(v) { return amount(v) + " " + doc.unit; }
  function pct(v) { return (v >= 0 ? "+" : "") + (v * 100).toFixed(1) + "%"; }
  function share(v) { return (v * 100).toFixed(1) + "%"; }
  function days(h) { return h + (h === 1 ? " day" : " days"); }
  function put(id, text) { var el = document.getElementById(id); if (el) { el.textContent = text; } }
  function held(h) {  // page.py's held_sentence
    var found = (doc.held || {})[String(h)];
    if (!found || found.coverage_80 === null) { return "No " + days(h) + " range has been judged yet."; }
    var where = found.source === "published" ? "this site's published forecasts"
      : "the backtest (no published forecast counts yet)";
    return "How often such ranges held: " + share(found.coverage_80) + " of " + found.n + " times " + days(h) +
      " ahead, in " + where + ".";
  }
  function show() {
    var h = Number(select.value);
    var row = doc.forecast.rows.filter(function (r) { return r.horizon === h; })[0];
    if (!row) { return; }
    put("a-target", row.target_day);
    put("a-low", amount(row.lower_80));
    put("a-high", amount(row.upper_80));
    put("a-95", amount(row.lower_95) + " to " + money(row.upper_95));
    var last = doc.forecast.last_close;
    if (last) { put("a-pct", pct(row.lower_80 / last - 1) + " to " + pct(row.upper_80 / last - 1)); }
    put("a-held", held(h));
    document.querySelectorAll("#forecast-table tr[data-h]").forEach(function (tr) {
      tr.classList.toggle("selected", Number(tr.getAttribute("data-h")) === h);
    });
  }
  select.addEventListener("change", show);
  show();
})();
