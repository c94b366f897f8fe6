/*
 * The run list while some run is running: its req/s, p95 and error % come from the run's row, which
 * the running process rewrites every 2 s. Every 5 s, fetch this very page again and swap the table's
 * rows, until no run on it is running. Rows are left alone while any is ticked for an action.
 * Without this script a reload shows the same figures.
 */
(function () {
  "use strict";

  var INTERVAL_MS = 5000;

  function rows(root) {
    return root.querySelector("#result_list tbody");
  }

  function running(root) {
    return root.querySelector("#result_list .perf-status-running") !== null;
  }

  function choosing() {
    return document.querySelector("#result_list tbody input[type=checkbox]:checked") !== null;
  }

  function refresh() {
    fetch(window.location.href, {credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) {
          throw new Error("the list answered " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var fresh = rows(new DOMParser().parseFromString(html, "text/html"));
        var current = rows(document);
        if (fresh && current && !choosing()) {
          current.replaceWith(fresh);
        }
      })
      .catch(function () {
        // The server may be busy under the very load it measures: try again next time.
      })
      .then(function () {
        if (running(document)) {
          window.setTimeout(refresh, INTERVAL_MS);
        }
      });
  }

  if (window.fetch && window.DOMParser && rows(document) && running(document)) {
    window.setTimeout(refresh, INTERVAL_MS);
  }
}());
