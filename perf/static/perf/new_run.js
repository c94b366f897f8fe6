/*
 * The New run page's load profiles (perf/web/run_control.py, NewRunForm's "Stages", "Rate stages" and "Shape").
 *
 * Each stages field is the option's text (30s:10,2m:10,30s:0), which is what the server checks and what the
 * command line gets: without this script a person types it. With it, the text is also shown as rows of
 * duration and target that can be added, removed, edited or (for users) filled from a preset (smoke, average,
 * stress, spike, soak), and a sketch of the load over time redraws as they change. Rows and text follow each
 * other both ways. Rate stages get the same editor, their targets iterations a second.
 *
 * The fields a profile sets are disabled while it is asked for (a disabled field is not sent), and the server
 * refuses them together: Users, Spawn rate and Duration for stages; Spawn rate and Duration for rate stages (Users
 * is their pool); for a shape, what its help item's data-sets names. The chosen shape's help alone is shown. The
 * server stays the judge of what is valid; the script only reads the text well enough to draw it.
 *
 * "Find capacity" is a mode of its own (perf/web/capacity_fields.py): ticked, its settings are shown and the fields
 * a search does not take are hidden and disabled (Spawn rate, Duration, the other profiles; Users too when the steps
 * are users, Think time when they are iterations a second); unticked, its settings are. Each start load and ceiling
 * says its unit, and Step factor is disabled while a Step increment is given (the command takes one of the two).
 *
 * Below the fields, the command line they make, as the server builds it for the submit (admin:perf_perfrun_command_line),
 * or what is wrong with them: asked again a moment after each change.
 */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var SIZE = {width: 460, height: 170, left: 44, right: 14, top: 30, bottom: 30};
  var DURATION = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/;
  var SET_FIELDS = ["users", "spawn_rate", "duration"];

  var form = document.getElementById("new-run");
  if (!form || !form.querySelector("#id_stages")) {
    return;
  }
  var maxUsers = Number(form.getAttribute("data-max-users")) || 1000;
  var maxSeconds = Number(form.getAttribute("data-max-duration")) || 3600;

  // --------------------------------------------------------------------------------------------- the text

  function seconds(text) {
    var value = text.trim().toLowerCase();
    var match = DURATION.exec(value);
    if (!value || !match || !/[hms]$/.test(value)) {
      return null;
    }
    return Number(match[1] || 0) * 3600 + Number(match[2] || 0) * 60 + Number(match[3] || 0);
  }

  function durationText(total) {
    var whole = Math.max(1, Math.round(total));
    var hours = Math.floor(whole / 3600), minutes = Math.floor((whole % 3600) / 60), secs = whole % 60;
    return (hours ? hours + "h" : "") + (minutes ? minutes + "m" : "") + (secs ? secs + "s" : "");
  }

  // [{duration: "30s", target: "10"}, ...] from the field's text; a stage without a colon keeps its text as duration.
  function parse(text) {
    if (!text.trim()) {
      return [];
    }
    return text.split(",").map(function (item) {
      var colon = item.indexOf(":");
      return colon < 0 ? {duration: item.trim(), target: ""}
        : {duration: item.slice(0, colon).trim(), target: item.slice(colon + 1).trim()};
    });
  }

  function serialise(stages) {
    return stages.map(function (stage) {
      return stage.duration.trim() + ":" + String(stage.target).trim();
    }).join(",");
  }

  // The stages as numbers, or null when one of them cannot be read (the server says why on submit).
  function numbers(stages) {
    var read = stages.map(function (stage) {
      var target = Number(stage.target);
      var duration = seconds(stage.duration);
      var ok = duration !== null && stage.target !== "" && isFinite(target) && target >= 0;
      return ok ? {duration: duration, target: target} : null;
    });
    return read.length && read.every(Boolean) ? read : null;
  }

  // --------------------------------------------------------------------------------------------- presets

  // Each preset is a function of the peak: the Users field's number (10 when it has none), within the page's limit.
  var PRESETS = {
    smoke: function () { return [["10s", 2], ["1m", 2], ["10s", 0]]; },
    average: function (peak) { return [["1m", peak], ["5m", peak], ["1m", 0]]; },
    stress: function (peak) {
      var high = Math.min(maxUsers, peak * 2);
      return [["1m", peak], ["3m", peak], ["1m", high], ["3m", high], ["1m", 0]];
    },
    spike: function (peak) {
      var base = Math.max(1, Math.round(peak / 4)), high = Math.min(maxUsers, peak * 3);
      return [["1m", base], ["10s", high], ["1m", high], ["10s", base], ["1m", base], ["10s", 0]];
    },
    soak: function (peak) {
      var hold = Math.max(60, Math.min(maxSeconds, 3600) - 240);
      return [["2m", peak], [durationText(hold), peak], ["2m", 0]];
    },
  };

  function preset(name) {
    var users = Number(document.getElementById("id_users") && document.getElementById("id_users").value);
    var peak = Math.min(maxUsers, users > 0 && Math.floor(users) === users ? users : 10);
    var stages = PRESETS[name](peak);
    var total = stages.reduce(function (sum, stage) { return sum + seconds(stage[0]); }, 0);
    var scale = total > maxSeconds ? maxSeconds / total : 1;  // kept within the page's longest run
    return stages.map(function (stage) {
      return {duration: scale < 1 ? durationText(Math.floor(seconds(stage[0]) * scale)) : stage[0],
              target: String(stage[1])};
    });
  }

  // --------------------------------------------------------------------------------------------- the editor

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      node.setAttribute(name, attributes[name]);
    });
    if (text) {
      node.textContent = text;
    }
    return node;
  }

  function svg(tag, attributes, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attributes).forEach(function (name) {
      node.setAttribute(name, attributes[name]);
    });
    if (text) {
      node.textContent = text;
    }
    return node;
  }

  // The editor of one stages field. unit: "users" (whole targets, presets, the page's most users) or
  // "iterations/s" (any number); changed: called after every change of the text.
  function stagesEditor(field, unit, changed) {
    var users = unit === "users";
    var editor = element("div", {"class": "perf-stages-editor"});
    var presets = element("div", {"class": "perf-stages-presets"});
    if (users) {
      presets.appendChild(element("span", {"class": "perf-stages-caption"}, "Presets:"));
      Object.keys(PRESETS).forEach(function (name) {
        presets.appendChild(element("button", {
          type: "button", "class": "button perf-stage-preset", "data-preset": name,
          title: "Fill the rows with a " + name + " test; edit them after"}, name));
      });
      editor.appendChild(presets);
    }
    var table = element("table", {"class": "perf-stages-rows"});
    table.innerHTML = "<thead><tr><th>Stage</th><th>Duration</th><th>Target " + unit + "</th><th></th></tr></thead>";
    var body = element("tbody");
    table.appendChild(body);
    var add = element("button", {type: "button", "class": "button perf-stage-add"}, "Add a stage");
    var sketch = element("div", {"class": "perf-stages-sketch"});
    editor.appendChild(table);
    editor.appendChild(add);
    editor.appendChild(sketch);
    field.closest(".form-row").appendChild(editor);

    function rows() {
      return Array.prototype.map.call(body.querySelectorAll("tr"), function (row) {
        return {duration: row.querySelector(".perf-stage-duration").value,
                target: row.querySelector(".perf-stage-target").value};
      });
    }

    function render(stages) {
      body.replaceChildren();
      stages.forEach(function (stage, index) {
        var row = element("tr", {"class": "perf-stage-row"});
        row.appendChild(element("td", {"class": "perf-stage-number"}, String(index + 1)));
        var cell = element("td");
        cell.appendChild(element("input", {type: "text", "class": "perf-stage-duration", size: "7",
                                           value: stage.duration, placeholder: "30s",
                                           "aria-label": "Stage " + (index + 1) + " duration"}));
        row.appendChild(cell);
        cell = element("td");
        var target = {type: "number", "class": "perf-stage-target", min: "0", step: users ? "1" : "any",
                      value: stage.target, "aria-label": "Stage " + (index + 1) + " target " + unit};
        if (users) {
          target.max = String(maxUsers);
        }
        cell.appendChild(element("input", target));
        row.appendChild(cell);
        cell = element("td");
        cell.appendChild(element("button", {type: "button", "class": "button perf-stage-remove",
                                            "aria-label": "Remove stage " + (index + 1)}, "Remove"));
        row.appendChild(cell);
        body.appendChild(row);
      });
      table.hidden = !stages.length;
    }

    // ------------------------------------------------------------------------------------------- the sketch

    function draw(stages) {
      sketch.replaceChildren();
      if (!stages.length) {
        return;
      }
      var read = numbers(stages);
      if (!read) {
        sketch.appendChild(element("p", {"class": "help perf-stages-unread"}, "A stage needs a duration with its " +
                                   "unit (30s, 2m, 1h30m) and a target of 0 or more."));
        return;
      }
      var total = read.reduce(function (sum, stage) { return sum + stage.duration; }, 0);
      var peak = Math.max.apply(null, read.map(function (stage) { return stage.target; }));
      var w = SIZE.width, h = SIZE.height, left = SIZE.left, right = w - SIZE.right, top = SIZE.top;
      var bottom = h - SIZE.bottom;
      function x(at) { return (left + (right - left) * at / Math.max(total, 1)).toFixed(1); }
      function y(value) { return (bottom - (bottom - top) * value / Math.max(peak, 1)).toFixed(1); }
      var title = read.length + (read.length === 1 ? " stage, " : " stages, ") + durationText(total) +
        " in all, up to " + peak + (users ? (peak === 1 ? " user" : " users") : " iterations/s");
      var chart = svg("svg", {"class": "perf-stages-sketch-svg", viewBox: "0 0 " + w + " " + h, width: String(w),
                              height: String(h), role: "img", "font-size": "11",
                              "font-family": "system-ui, sans-serif"});
      chart.appendChild(svg("title", {}, "Load profile: " + title));
      chart.appendChild(svg("text", {x: "8", y: "16", "font-weight": "600"}, title));
      chart.appendChild(svg("line", {x1: left, y1: bottom, x2: right, y2: bottom, stroke: "#6b7280"}));
      chart.appendChild(svg("line", {x1: left, y1: top, x2: left, y2: bottom, stroke: "#6b7280"}));
      chart.appendChild(svg("text", {x: left - 6, y: Number(y(peak)) + 4, "text-anchor": "end", fill: "#6b7280"},
                            String(peak)));
      chart.appendChild(svg("text", {x: left - 6, y: bottom + 4, "text-anchor": "end", fill: "#6b7280"}, "0"));
      chart.appendChild(svg("text", {x: right, y: bottom + 16, "text-anchor": "end", fill: "#6b7280"},
                            durationText(total)));
      chart.appendChild(svg("text", {x: left, y: bottom + 16, fill: "#6b7280"}, "0s"));
      var points = [x(0) + "," + y(0)], at = 0;
      read.forEach(function (stage, index) {
        if (index > 0) {
          chart.appendChild(svg("line", {x1: x(at), y1: top - 4, x2: x(at), y2: bottom, stroke: "#94a3b8",
                                         "stroke-dasharray": "2 3", "class": "perf-stages-boundary"}));
        }
        chart.appendChild(svg("text", {x: x(at + stage.duration / 2), y: top - 6, fill: "#6b7280", "font-size": "10",
                                       "text-anchor": "middle"}, String(index + 1)));
        at += stage.duration;
        points.push(x(at) + "," + y(stage.target));
      });
      chart.appendChild(svg("polyline", {points: points.join(" "), fill: "none", stroke: "#2563eb", "stroke-width": "2",
                                         "stroke-linejoin": "round", "class": "perf-stages-line"}));
      sketch.appendChild(chart);
    }

    function fromRows() {
      var stages = rows();
      field.value = serialise(stages);
      changed();
      draw(stages);
    }

    function fromText() {
      var stages = parse(field.value);
      render(stages);
      changed();
      draw(stages);
    }

    body.addEventListener("input", fromRows);
    body.addEventListener("click", function (event) {
      var remove = event.target.closest(".perf-stage-remove");
      if (remove) {
        remove.closest("tr").remove();
        fromRows();
        fromText();  // renumbered
      }
    });
    add.addEventListener("click", function () {
      var stages = rows();
      // A new stage goes back up to the highest target so far (the last is often a ramp down to 0).
      var highest = Math.max.apply(null, [0].concat(stages.map(function (stage) {
        return Number(stage.target) || 0;
      })));
      stages.push({duration: "1m", target: String(highest || 10)});
      render(stages);
      fromRows();
      body.querySelector("tr:last-child .perf-stage-duration").focus();
    });
    presets.addEventListener("click", function (event) {
      var button = event.target.closest("[data-preset]");
      if (button) {
        render(preset(button.getAttribute("data-preset")));
        fromRows();
      }
    });
    field.addEventListener("input", fromText);
    fromText();
  }

  // --------------------------------------------------------------------------------------------- wiring

  function value(id) {
    var input = document.getElementById(id);
    return input ? input.value.trim() : "";
  }

  // The fields the profile asked for sets, each with the note said beside it.
  function setBy() {
    var set = {};
    if (value("id_stages")) {
      SET_FIELDS.forEach(function (name) { set[name] = "set by the stages"; });
    } else if (value("id_rate_stages")) {
      set.spawn_rate = set.duration = "set by the rate stages";
    } else if (value("id_shape")) {
      var item = form.querySelector('.perf-shape-help [data-shape="' + value("id_shape") + '"]');
      (item ? item.getAttribute("data-sets").split(" ") : []).forEach(function (name) {
        if (name) {
          set[name] = "set by the shape";
        }
      });
    }
    return set;
  }

  // ------------------------------------------------------------------------------------------- find capacity

  var capacity = document.getElementById("id_find_capacity");
  var SEARCH_SETTINGS = ["capacity_model", "start_load", "max_load", "step_factor", "step_increment", "settle", "hold",
                         "resolution", "budget"];
  var NOT_IN_SEARCH = ["spawn_rate", "duration", "stages", "rate_stages", "shape", "shape_parameters"];
  var UNITS = {users: "users", rate: "iterations/s"};

  function row(name) {
    return form.querySelector(".form-row.field-" + name);
  }

  // A row shown, or hidden with its controls disabled (a disabled control is not sent).
  function show(name, shown) {
    var found = row(name);
    if (!found) {
      return;
    }
    found.hidden = !shown;
    Array.prototype.forEach.call(found.querySelectorAll("input, select, textarea, button"), function (control) {
      control.disabled = !shown;
    });
  }

  // The note beside a field ("set by the stages", "the pool the iterations run on"), or none.
  function note(name, text) {
    var found = row(name);
    if (!found) {
      return;
    }
    var span = found.querySelector(".perf-by-stages");
    if (text && !span) {
      span = found.querySelector(".flex-container").appendChild(element("span", {"class": "perf-by-stages"}));
    } else if (!text && span) {
      span.remove();
    }
    if (text) {
      span.textContent = text;
    }
  }

  function model() {
    var checked = form.querySelector("input[name=capacity_model]:checked");
    return checked ? checked.value : "users";
  }

  // The search's rows, and the others' as a search takes them; true when the page is in this mode.
  function syncCapacity() {
    var on = Boolean(capacity && capacity.checked);
    var rate = on && model() === "rate";
    SEARCH_SETTINGS.forEach(function (name) { show(name, on); });
    NOT_IN_SEARCH.forEach(function (name) { show(name, !on); });
    show("users", !on || rate);
    show("wait", !rate);
    note("users", rate ? "the pool the iterations run on" : "");
    note("thresholds", on ? "needed: each step passes while they all hold" : "");
    if (on) {
      ["start_load", "max_load", "step_increment"].forEach(function (name) {
        var input = document.getElementById("id_" + name);
        var unit = input.parentNode.querySelector(".perf-capacity-unit");
        if (!unit) {
          unit = element("span", {"class": "perf-capacity-unit"});
          input.insertAdjacentElement("afterend", unit);
        }
        unit.textContent = UNITS[model()];
      });
      var factor = document.getElementById("id_step_factor");
      factor.disabled = Boolean(value("id_step_increment"));
      note("step_factor", factor.disabled ? "not with a Step increment" : "");
    }
    return on;
  }

  // --------------------------------------------------------------------------------------------- the command line

  var preview = form.querySelector(".perf-command-line");
  var asked = 0, timer = null;

  function askCommandLine() {
    var number = ++asked;
    fetch(preview.getAttribute("data-url"), {method: "POST", body: new FormData(form), credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        if (!answer || number !== asked) {
          return;  // a later change asked again; its answer is the one to show
        }
        var code = preview.querySelector(".perf-command"), list = preview.querySelector(".perf-command-problems");
        code.replaceChildren();
        answer.words.forEach(function (word, index) {  // a word wraps whole, unless it is longer than the line
          code.appendChild(document.createTextNode(index ? " " : ""));
          code.appendChild(element("span", {"class": "perf-command-word"}, word));
        });
        code.parentNode.hidden = !answer.words.length;
        list.replaceChildren();
        answer.problems.forEach(function (problem) { list.appendChild(element("li", {}, problem)); });
        preview.hidden = false;
      })
      .catch(function () {});  // the server stays the judge on submit
  }

  function refresh() {
    if (preview) {
      clearTimeout(timer);
      timer = setTimeout(askCommandLine, 250);
    }
  }

  function sync() {
    refresh();
    if (syncCapacity()) {  // the search's own notes said; the rows of spawn rate and duration are hidden
      note("spawn_rate", "");
      note("duration", "");
      return;
    }
    var set = setBy();
    SET_FIELDS.forEach(function (name) {
      var input = document.getElementById("id_" + name);
      if (input) {
        input.disabled = Boolean(set[name]);
        note(name, set[name] || "");
      }
    });
    var shape = value("id_shape");
    Array.prototype.forEach.call(form.querySelectorAll(".perf-shape-help [data-shape]"), function (item) {
      item.hidden = Boolean(shape) && item.getAttribute("data-shape") !== shape;
    });
  }

  stagesEditor(form.querySelector("#id_stages"), "users", sync);
  if (form.querySelector("#id_rate_stages")) {
    stagesEditor(form.querySelector("#id_rate_stages"), "iterations/s", sync);
  }
  if (form.querySelector("#id_shape")) {
    form.querySelector("#id_shape").addEventListener("change", sync);
  }
  SEARCH_SETTINGS.concat(["find_capacity"]).forEach(function (name) {
    var found = row(name);
    if (found) {
      found.addEventListener("input", sync);
      found.addEventListener("change", sync);
    }
  });
  form.addEventListener("input", refresh);
  form.addEventListener("change", refresh);
  sync();
}());
