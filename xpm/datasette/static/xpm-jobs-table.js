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
