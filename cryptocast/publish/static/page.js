// The horizon selector: reads the numbers from the embedded copy of forecast.json (browsers block
// reading other files from file://) and writes them the way formats.py does: cents, then the unit.
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
  function days(h) { return h + (h === 1 ? " day" : " days"); }
  function put(id, text) { document.getElementById(id).textContent = text; }
  function show() {
    var h = Number(select.value);
    var row = doc.forecast.rows.filter(function (r) { return r.horizon === h; })[0];
    if (!row) { return; }
    put("h-point", money(row.point));
    put("h-target", row.target_day);
    put("h-80", money(row.lower_80) + " to " + money(row.upper_80));
    put("h-95", money(row.lower_95) + " to " + money(row.upper_95));
    var last = doc.forecast.last_close;
    if (last) {
      var change = (row.point / last - 1) * 100;
      put("h-change", (change >= 0 ? "+" : "") + change.toFixed(1) + "%");
    }
    put("o-days", days(h));
    document.querySelectorAll("#forecast-table tr[data-h]").forEach(function (tr) {
      tr.classList.toggle("selected", Number(tr.getAttribute("data-h")) === h);
    });
    document.querySelectorAll("#outcomes tr[data-h]").forEach(function (tr) {
      tr.hidden = Number(tr.getAttribute("data-h")) !== h;
    });
  }
  select.addEventListener("change", show);
  show();
})();
