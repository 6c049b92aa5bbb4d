// The live board: countdowns every second, and the rows fetched again when the server says
// something changed (server-sent events). Without JavaScript the page is the same list.
(function () {
  "use strict";
  var table = document.getElementById("board");
  if (!table) { return; }
  var query = table.getAttribute("data-query") || "";
  var live = document.getElementById("live");

  function left(seconds) {
    var overdue = seconds < 0;
    var s = Math.floor(Math.abs(seconds));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    var text = d > 0 ? d + "d " + h + "h" : h > 0 ? h + "h " + String(m).padStart(2, "0") + "m"
      : m + "m " + String(s % 60).padStart(2, "0") + "s";
    return overdue ? "overdue " + text : text + " left";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-due]").forEach(function (el) {
      el.textContent = left((Date.parse(el.getAttribute("data-due")) - now) / 1000);
    });
  }

  function reload() {
    fetch("/board/rows" + query, { credentials: "same-origin" }).then(function (answer) {
      if (!answer.ok) { throw new Error("board rows: HTTP " + answer.status); }
      return answer.text();
    }).then(function (html) {
      var before = {};
      document.querySelectorAll("#rows tr[data-incident]").forEach(function (tr) {
        before[tr.getAttribute("data-incident")] = tr.getAttribute("data-status");
      });
      var holder = document.createElement("table");
      holder.innerHTML = html;
      var rows = holder.querySelector("tbody");
      document.getElementById("rows").replaceWith(rows);
      rows.querySelectorAll("tr[data-incident]").forEach(function (tr) {
        if (before[tr.getAttribute("data-incident")] !== tr.getAttribute("data-status")) {
          tr.classList.add("updated");
        }
      });
      var caption = table.querySelector("caption");
      if (caption) { caption.textContent = rows.getAttribute("data-count") + " open incident(s)"; }
      var stamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      document.getElementById("as-of").textContent = stamp;
      live.textContent = "updated";
      tick();
    }).catch(function (error) { live.textContent = String(error.message); });
  }

  if (window.EventSource) {
    var source = new EventSource("/v1/board/events" + query);
    source.addEventListener("changed", reload);
    source.onerror = function () { live.textContent = "reconnecting…"; };
    source.onopen = function () { live.textContent = "live"; };
  }
  tick();
  window.setInterval(tick, 1000);
}());
