// xpm live pages: while jobs run, fetch the page again every few seconds when the index
// changed (the heartbeat says) and swap in the regions it names (no reload, no flicker; ticked boxes and scroll positions stay); when
// the fresh page says nothing runs, stop refreshing and only ask, every few seconds, the
// small /-/xpm/live.json whether something started or the index changed, to resume then
// (a page opened before its run starts still follows it).  On #xpm-live:
// data-regions="id id ...", data-active="1" (something runs) or "0", data-interval and
// data-idle (milliseconds), data-live-url (the heartbeat).
(function () {
  "use strict";
  var box = document.getElementById("xpm-live");
  if (!box) { return; }
  var root = document.documentElement;
  var interval = parseInt(box.getAttribute("data-interval"), 10) || 3000;
  var idlePeriod = parseInt(box.getAttribute("data-idle"), 10) || 10000;
  var liveUrl = box.getAttribute("data-live-url");
  // The index's version the page's rows are at least as new as (taken by the server when
  // the request arrived, before reading them): the first heartbeat compares with it.
  var version = box.getAttribute("data-version") || null;

  function scrolled(region) {
    // Elements with an id scrolled away from their start (a wide runs table).
    var found = {};
    region.querySelectorAll("[id]").forEach(function (el) {
      if (el.scrollLeft || el.scrollTop) { found[el.id] = [el.scrollLeft, el.scrollTop]; }
    });
    if (region.id && (region.scrollLeft || region.scrollTop)) {
      found[region.id] = [region.scrollLeft, region.scrollTop];
    }
    return found;
  }

  document.addEventListener("change", function (e) {
    var form = e.target && e.target.closest ? e.target.closest("form[id]") : null;
    if (form) { form.setAttribute("data-xpm-edited", "1"); }
  }, true);

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    var ticked = Array.prototype.map.call(
      document.querySelectorAll('input[type="checkbox"][name="id"]:checked'),
      function (c) { return c.value; });
    (box.getAttribute("data-regions") || "").split(/\s+/).forEach(function (id) {
      var old = id && document.getElementById(id), neu = id && fresh.getElementById(id);
      if (!old || !neu) { return; }
      // A form the reader is filling in (a choice changed, not yet drawn) stays as it is.
      if (old.tagName === "FORM" &&
          (old.getAttribute("data-xpm-edited") === "1" || old.contains(document.activeElement))) { return; }
      var positions = scrolled(old);
      var copy = document.importNode(neu, true);
      old.replaceWith(copy);
      Object.keys(positions).forEach(function (key) {
        var el = document.getElementById(key);
        if (el) { el.scrollLeft = positions[key][0]; el.scrollTop = positions[key][1]; }
      });
    });
    ticked.forEach(function (value) {
      var c = document.querySelector('input[type="checkbox"][name="id"][value="' + value + '"]');
      if (c) { c.checked = true; }
    });
    if (window.xpmChart && window.xpmChart.redraw) { window.xpmChart.redraw(); }
    var state = fresh.getElementById("xpm-live");
    box.setAttribute("data-active", state ? state.getAttribute("data-active") : "0");
    if (state && state.getAttribute("data-version")) { version = state.getAttribute("data-version"); }
    root.setAttribute("data-xpm-refreshes", String((parseInt(root.getAttribute("data-xpm-refreshes"), 10) || 0) + 1));
  }

  function refresh() {
    root.setAttribute("data-xpm-live", "polling");
    var started = Date.now();
    fetch(window.location.href, {cache: "no-store", credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { swap(html); next(Math.max(0, interval - (Date.now() - started))); })
      .catch(function () { setTimeout(refresh, interval * 2); });
  }

  // While jobs run, the page is fetched again only when the index changed since (the small
  // heartbeat says), or every FORCED-th time (durations of running jobs go on): a chart
  // of 5,000 curves (15 MB) was fetched every 3 s while its running jobs wrote nothing.
  var FORCED = 10, skipped = 0;

  function poll() {
    if (!liveUrl || skipped + 1 >= FORCED) { skipped = 0; refresh(); return; }
    fetch(liveUrl, {cache: "no-store", credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (state) {
        if (version !== null && state.version === version) {
          skipped += 1;
          root.setAttribute("data-xpm-skipped", String((parseInt(root.getAttribute("data-xpm-skipped"), 10) || 0) + 1));
          setTimeout(poll, interval);
        } else {
          skipped = 0;
          refresh();
        }
      })
      .catch(function () { refresh(); });
  }

  function next(wait) {
    if (box.getAttribute("data-active") === "1") {
      setTimeout(poll, wait);
    } else {
      root.setAttribute("data-xpm-live", "idle");
      // The version the last refresh was made at: a write since (the run's last) shows
      // at the first heartbeat.
      setTimeout(heartbeat, idlePeriod);
    }
  }

  function heartbeat() {
    if (!liveUrl) { return; }
    fetch(liveUrl, {cache: "no-store", credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (state) {
        var changed = version !== null && state.version !== version;
        version = state.version;
        if (state.active > 0 || changed) { refresh(); } else { setTimeout(heartbeat, idlePeriod); }
      })
      .catch(function () { setTimeout(heartbeat, idlePeriod * 2); });
  }

  if (box.getAttribute("data-active") === "1") {
    root.setAttribute("data-xpm-live", "polling");
    setTimeout(poll, interval);
  } else {
    root.setAttribute("data-xpm-live", "idle");
    heartbeat();  // compares with the version the page was made at
  }
})();
