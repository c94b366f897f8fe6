/*
 * The run page while its run is running: every 2 s, ask the live view (admin:perf_perfrun_live) for
 * the page's sections rendered again and swap each [data-perf-section] in place, the run's output
 * included; once the run is no longer running, replace the messages that were about the running run
 * ("Stopping run 5…") with how it ended, and stop after a few more rounds (its process still prints for
 * a moment: the audit, the files, its last line).
 * Until the first figures are written (a run just started) it asks at once and then every quarter
 * of a second for up to 10 s, so they show as soon as they exist. The endpoint chooser switches charts without a reload. Without this script
 * the page is complete as last loaded, and the chooser is a plain GET form.
 */
(function () {
  "use strict";

  var INTERVAL_MS = 2000;
  var FIRST_FIGURES_MS = 250;
  // Only for a while: a run whose first answers take longer (a slow server, a dead process) is asked every 2 s.
  var fastUntil = Date.now() + 10000;
  // After the run has ended its process still prints (the audit, the files, its last line): a few more rounds.
  var ROUNDS_AFTER_END = 5;
  var roundsAfterEnd = 0;
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

  // The output reads like a terminal: its end shows, unless the person scrolled up to read.
  function logAtEnd() {
    var log = root.querySelector("pre.perf-log");
    return !log || log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  }

  function showLogEnd() {
    var log = root.querySelector("pre.perf-log");
    if (log) {
      log.scrollTop = log.scrollHeight;
    }
  }

  function ended(message) {
    var list = document.querySelector("ul.messagelist");
    if (!message) {
      return;
    }
    if (!list) {
      list = document.createElement("ul");
      list.className = "messagelist";
      var content = document.getElementById("content");
      content.parentNode.insertBefore(list, content);
    }
    var item = document.createElement("li");
    item.className = "info";
    item.textContent = message;
    list.replaceChildren(item);
  }

  function apply(data, force) {
    var wasRunning = running();
    var follow = logAtEnd();
    var sections = Object.assign({}, data.sections);
    if (typeof data.log === "string") {
      sections.log = data.log;  // the run's output: a section of the admin's page, not of the report
    }
    Object.keys(sections).forEach(function (name) {
      var section = root.querySelector('[data-perf-section="' + name + '"]');
      if (!section || (!force && busy(section))) {
        return;
      }
      var html = sections[name];
      section.innerHTML = html;
      section.hidden = !html.trim();
    });
    root.setAttribute("data-perf-status", data.status);
    if (wasRunning && !running()) {
      ended(data.message);
    }
    if (follow) {
      showLogEnd();
    }
    hideNoJsButtons();
  }

  // A run just started has no figures yet: the page says "Starting: …" until it has.
  function interval() {
    return root.querySelector(".perf-starting") && Date.now() < fastUntil ? FIRST_FIGURES_MS : INTERVAL_MS;
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
        window.setTimeout(poll, interval());
      } else if (roundsAfterEnd < ROUNDS_AFTER_END) {
        roundsAfterEnd += 1;
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
  showLogEnd();
  if (running()) {
    // A run just started: its first figures are due any moment, so look at once.
    window.setTimeout(poll, root.querySelector(".perf-starting") ? 0 : INTERVAL_MS);
  }
}());
