// The index's jobs table (/xpm/jobs), Datasette's own page: each job's id opens its job
// page (the plugin's view of it) rather than the raw row, shown as 12 digits with the whole
// id on hover; the long list of column descriptions folds away under one line.
(function () {
  "use strict";
  var jobPage = "/-/xpm/job/";  // the plugin replaces it by the URL under Datasette's base
  document.querySelectorAll("td.type-pk a").forEach(function (a) {
    var id = a.textContent.trim();
    if (!/^[0-9a-f]{64}$/.test(id)) { return; }
    a.href = jobPage + id;
    a.title = id + " (job page)";
    a.textContent = id.slice(0, 12);
  });
  document.querySelectorAll("dl.column-descriptions").forEach(function (dl) {
    var details = document.createElement("details");
    var summary = document.createElement("summary");
    summary.textContent = "Column descriptions";
    details.appendChild(summary);
    dl.parentNode.insertBefore(details, dl);
    details.appendChild(dl);
  });
})();

// A runs table (experiment and task pages): jobs ticked for "Compare" stay ticked across
// the table's pages (sessionStorage, keyed by the table: data-table on its form), the
// button says how many are ticked and is disabled while none is; comparing sends every
// ticked job, those of other pages too, and forgets the ticks.
(function () {
  "use strict";
  var form = document.getElementById("xpm-runs-form");
  if (!form) { return; }
  var key = "xpm-ticks:" + (form.getAttribute("data-table") || window.location.pathname);

  function load() {
    try { return JSON.parse(window.sessionStorage.getItem(key) || "[]"); } catch (e) { return []; }
  }

  function store(ids) {
    try {
      if (ids.length) { window.sessionStorage.setItem(key, JSON.stringify(ids)); }
      else { window.sessionStorage.removeItem(key); }
    } catch (e) { /* storage refused: ticks stay on this page only */ }
  }

  function boxes() {
    return form.querySelectorAll('input[type="checkbox"][name="id"]');
  }

  function ticked() {  // the stored ticks and this page's (all, should storage refuse)
    var ids = load();
    boxes().forEach(function (c) { if (c.checked && ids.indexOf(c.value) < 0) { ids.push(c.value); } });
    return ids;
  }

  function show() {
    var button = form.querySelector('button[type="submit"]');
    if (!button) { return; }
    var n = ticked().length;
    var text = n ? "Compare " + n + " ticked job" + (n > 1 ? "s" : "") : "Compare ticked jobs";
    if (button.textContent !== text) { button.textContent = text; }
    if (button.disabled !== !n) { button.disabled = !n; }
    button.title = n ? "" : "tick jobs in the first column to compare them";
  }

  function restore() {
    var ids = load();
    boxes().forEach(function (c) { if (ids.indexOf(c.value) >= 0) { c.checked = true; } });
    show();
  }

  form.addEventListener("change", function (event) {
    var c = event.target;
    if (!c || c.name !== "id" || c.type !== "checkbox") { return; }
    var ids = load().filter(function (id) { return id !== c.value; });
    if (c.checked) { ids.push(c.value); }
    store(ids);
    show();
  });

  form.addEventListener("submit", function (event) {
    var ids = ticked();
    if (!ids.length) { event.preventDefault(); return; }
    var here = {};
    boxes().forEach(function (c) { here[c.value] = true; });
    ids.forEach(function (id) {  // ticked on another page of the table
      if (here[id]) { return; }
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "id";
      input.value = id;
      form.appendChild(input);
    });
    store([]);
  });

  // A live refresh swaps the table and its pager in: ticks and the button's count again.
  new MutationObserver(restore).observe(form, {childList: true, subtree: true});
  restore();
  // Back from the comparison, the browser puts back the boxes as they were ticked (from
  // its page cache, or restoring the form after this script ran), though comparing forgot
  // them: the stored ticks decide, boxes and count agree (a trial saw a ticked box beside
  // a disabled "Compare ticked jobs").
  window.addEventListener("pageshow", function () {
    var ids = load();
    boxes().forEach(function (c) { c.checked = ids.indexOf(c.value) >= 0; });
    show();
  });
})();
