// xpm live pages: while jobs run, fetch the page again every few seconds and swap in the
// regions it names (no reload, no flicker; ticked boxes stay ticked); stop when the fresh
// page says nothing runs.  The regions and the state are on #xpm-live:
// data-regions="id id ..." and data-active="1" (something runs) or "0".
(function () {
  "use strict";
  var box = document.getElementById("xpm-live");
  if (!box) { return; }
  var root = document.documentElement;
  var interval = parseInt(box.getAttribute("data-interval"), 10) || 3000;

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    var ticked = Array.prototype.map.call(
      document.querySelectorAll('input[type="checkbox"][name="id"]:checked'),
      function (c) { return c.value; });
    (box.getAttribute("data-regions") || "").split(/\s+/).forEach(function (id) {
      var old = id && document.getElementById(id), neu = id && fresh.getElementById(id);
      if (old && neu) { old.replaceWith(document.importNode(neu, true)); }
    });
    ticked.forEach(function (value) {
      var c = document.querySelector('input[type="checkbox"][name="id"][value="' + value + '"]');
      if (c) { c.checked = true; }
    });
    if (window.xpmChart && window.xpmChart.redraw) { window.xpmChart.redraw(); }
    var state = fresh.getElementById("xpm-live");
    box.setAttribute("data-active", state ? state.getAttribute("data-active") : "0");
    root.setAttribute("data-xpm-refreshes", String((parseInt(root.getAttribute("data-xpm-refreshes"), 10) || 0) + 1));
  }

  function tick() {
    if (box.getAttribute("data-active") !== "1") {
      root.setAttribute("data-xpm-live", "stopped");
      return;
    }
    root.setAttribute("data-xpm-live", "polling");
    fetch(window.location.href, {cache: "no-store", credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { swap(html); setTimeout(tick, interval); })
      .catch(function () { setTimeout(tick, interval * 2); });
  }

  root.setAttribute("data-xpm-live", box.getAttribute("data-active") === "1" ? "polling" : "stopped");
  setTimeout(tick, interval);
})();
