/*
 * The run page while its run is running: every 2 s, ask the live view (admin:perf_perfrun_live) for
 * the page's sections rendered again and swap each [data-perf-section] in place; stop once the run
 * is no longer running (after one last swap, so the finished figures show). The endpoint chooser
 * switches charts without a reload. Without this script the page is complete as last loaded, and
 * the chooser is a plain GET form.
 */
(function () {
  "use strict";

  var INTERVAL_MS = 2000;
  var root = document.querySelector("[data-perf-live-url]");
  if (!root || !window.fetch) {
    return;
  }
  var endpoint = new URLSearchParams(window.location.search).get("endpoint") || "";

  function liveUrl() {
    var url = new URL(root.getAttribute("data-perf-live-url"), window.location.href);
    if (endpoint) {
      url.searchParams.set("endpoint", endpoint);
    }
    return url;
  }

  function hideNoJsButtons() {
    document.querySelectorAll(".perf-nojs").forEach(function (button) {
      button.hidden = true;
    });
  }

  // A section the person is typing or choosing in is left alone until the next round.
  function busy(section) {
    var active = document.activeElement;
    return active && active !== document.body && section.contains(active) &&
      /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
  }

  function apply(data, force) {
    Object.keys(data.sections).forEach(function (name) {
      var section = root.querySelector('[data-perf-section="' + name + '"]');
      if (!section || (!force && busy(section))) {
        return;
      }
      var html = data.sections[name];
      section.innerHTML = html;
      section.hidden = !html.trim();
    });
    root.setAttribute("data-perf-status", data.status);
    hideNoJsButtons();
  }

  function load() {
    return fetch(liveUrl(), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) {
        if (!response.ok) {
          throw new Error("live view answered " + response.status);
        }
        return response.json();
      });
  }

  function running() {
    return root.getAttribute("data-perf-status") === "running";
  }

  function poll() {
    load().then(function (data) {
      apply(data, false);
    }).catch(function () {
      // The server may be busy under the very load it measures: keep the page and try again.
    }).then(function () {
      if (running()) {
        window.setTimeout(poll, INTERVAL_MS);
      }
    });
  }

  document.addEventListener("change", function (event) {
    var select = event.target.closest ? event.target.closest("select[data-perf-endpoint]") : null;
    if (!select || !root.contains(select)) {
      return;
    }
    endpoint = select.value;
    var address = new URL(window.location.href);
    address.searchParams.set("endpoint", endpoint);
    window.history.replaceState(null, "", address);
    load().then(function (data) {
      apply(data, true);
    }).catch(function () {
      window.location.assign(address);  // no live view: the GET form's way
    });
  });

  hideNoJsButtons();
  if (running()) {
    window.setTimeout(poll, INTERVAL_MS);
  }
}());
