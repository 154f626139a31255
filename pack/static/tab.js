/*
 * flapping-pack: the live part of Locust's "Server resources" tab.
 *
 * Locust's extended tabs can only show one table (our baseline/now/growth rows, served in
 * /stats/requests). This script adds what a table cannot: the run's phase and verdict, each
 * check's current state, the chart and the download links, in a container placed right under
 * Locust's table (React does not touch nodes it did not create) and shown only while the tab is
 * selected.
 */
(function () {
  "use strict";

  var TAB_TITLE = "Server resources";
  var FIRST_COLUMN = "Resource"; // title of the first column of the tab's table (pack/web_ui.py)
  var POLL_MS = 2000;
  var base = new URL("./flapping-pack/", document.baseURI);

  var panel = null; // our container, built on first use
  var chart = null; // the uPlot handle once there is data
  var lastFetch = 0; // ms timestamp of the last poll

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") {
        node.textContent = attrs[k];
      } else {
        node.setAttribute(k, attrs[k]);
      }
    });
    (children || []).forEach(function (c) {
      node.appendChild(c);
    });
    return node;
  }

  function tabSelected() {
    var tab = document.querySelector('[role="tab"][aria-selected="true"]');
    return !!tab && tab.textContent.trim() === TAB_TITLE;
  }

  function colors() {
    var style = getComputedStyle(document.body);
    return { text: style.color || "#333", grid: "rgba(128, 128, 128, 0.25)" };
  }

  function build() {
    panel = el("section", { id: "flapping-pack-panel", "aria-label": "flapping-pack server resources" });
    panel.innerHTML =
      '<div class="fp-status" data-fp="status"></div>' +
      '<div class="fp-verdict" data-fp="verdict" hidden></div>' +
      "<h3>Checks</h3>" +
      '<table class="fp-checks"><thead><tr><th>check</th><th>state</th><th>observed</th><th>limit</th>' +
      '<th>detail</th></tr></thead><tbody data-fp="checks"></tbody></table>' +
      "<h3>Stream, settles and metric freshness</h3>" +
      '<ul class="fp-notes" data-fp="notes"></ul>' +
      "<h3>Memory, fds, connections, agents (and lost stream messages) over time</h3>" +
      '<div class="fp-chart" data-fp="chart"><p class="fp-muted">No samples yet.</p></div>' +
      '<p class="fp-links"><a href="' +
      new URL("resources.csv", base) +
      '">Download the resource timeline (CSV)</a> · <a href="' +
      new URL("verdict.json", base) +
      '">Download the verdict (JSON)</a></p>';
    document.body.appendChild(panel);
  }

  function part(name) {
    return panel.querySelector('[data-fp="' + name + '"]');
  }

  function cell(value, unit) {
    if (value === null || value === undefined) {
      return "-";
    }
    return unit ? value + (unit === "%" ? "%" : " " + unit) : String(value);
  }

  function showStatus(status) {
    var samples = status.samples || { total: 0 };
    var cycles = status.cycles || {};
    part("status").textContent =
      "Phase: " +
      status.phase +
      " · samples: " +
      samples.total +
      " · cycles completed: " +
      (cycles.completed || 0) +
      " · monitor: " +
      (status.monitor || {}).watching +
      ((status.monitor || {}).error ? " (last error: " + status.monitor.error + ")" : "");

    var verdict = part("verdict");
    if (status.final) {
      verdict.hidden = false;
      verdict.className = "fp-verdict " + (status.passed ? "fp-pass" : "fp-fail");
      verdict.textContent =
        "VERDICT: " +
        (status.passed ? "PASS" : "FAIL") +
        " (exit code " +
        status.exit_code +
        (status.interrupted ? ", interrupted" : "") +
        (status.stop_reason ? ", " + status.stop_reason : "") +
        ")";
    } else {
      verdict.hidden = true;
    }

    var body = part("checks");
    body.textContent = "";
    (status.checks || []).forEach(function (c) {
      var state = status.final ? c.status.toUpperCase() : c.status + " (so far)";
      body.appendChild(
        el("tr", { class: "fp-" + c.status }, [
          el("td", { text: c.name }),
          el("td", { text: state }),
          el("td", { text: cell(c.observed, c.unit) }),
          el("td", { text: cell(c.limit, c.unit) }),
          el("td", { text: c.detail || "" }),
        ])
      );
    });
    showNotes(status);
  }

  function showNotes(status) {
    // How each round's settle ended, then how often each series really changed (and suspect gauges).
    var notes = part("notes");
    notes.textContent = "";
    var lines = (status.settles || []).map(function (s) {
      return "round " + s.round + " settle: " + s.reason;
    });
    lines = lines.concat(((status.monitor || {}).freshness || {}).lines || []);
    var stream = streamLine(status);
    if (stream) {
      lines.unshift(stream);
    }
    lines.forEach(function (line) {
      notes.appendChild(el("li", { text: line }));
    });
  }

  // The users' streams (a stream: in the conversation): what came, what was lost, what the server resumed.
  function streamLine(status) {
    var lost = (status.checks || []).filter(function (c) {
      return c.name === "messages_lost";
    })[0];
    var counts = (status.connections || {}).continuity;
    if (!lost || lost.status === "skip" || !counts) {
      return null;
    }
    var line =
      "stream: " + counts.stream_messages + " messages received, " + counts.messages_lost + " lost, " +
      counts.messages_duplicated + " duplicated; " + counts.resumes_asked + " reconnects resumed their session";
    if (counts.resumes_answered) {
      line += ", the server resumed " + counts.sessions_resumed + " of them";
    }
    return line;
  }

  function showTimeline(data) {
    if (chart === null) {
      if (!data.t_s.length) {
        return;
      }
      var box = part("chart");
      box.textContent = "";
      chart = window.flappingPackChart.render(box, data, colors());
    } else {
      chart.update(data);
    }
  }

  function fetchJson(name) {
    return fetch(new URL(name, base), { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (!r.ok) {
        throw new Error(name + ": HTTP " + r.status);
      }
      return r.json();
    });
  }

  function poll() {
    lastFetch = Date.now();
    Promise.all([fetchJson("status.json"), fetchJson("timeline.json")])
      .then(function (results) {
        showStatus(results[0]);
        showTimeline(results[1]);
      })
      .catch(function (error) {
        part("status").textContent = "Could not read the pack's status: " + error.message;
      });
  }

  // Locust's table of our tab: the panel goes right under it (React leaves foreign nodes alone).
  function tableContainer() {
    var heads = document.querySelectorAll("table thead th");
    for (var i = 0; i < heads.length; i++) {
      if (heads[i].textContent.trim() === FIRST_COLUMN) {
        var table = heads[i].closest("table");
        return table.closest(".MuiTableContainer-root") || table;
      }
    }
    return null;
  }

  function place() {
    var anchor = tableContainer();
    if (anchor !== null) {
      if (anchor.nextSibling !== panel) {
        anchor.after(panel);
      }
      panel.classList.add("fp-in-tab");
    } else if (panel.parentNode !== document.body) {
      document.body.appendChild(panel); // Locust's layout changed: still show it, below the app
      panel.classList.remove("fp-in-tab");
    }
  }

  function tick() {
    var visible = tabSelected();
    if (visible && panel === null) {
      build();
    }
    if (panel !== null) {
      panel.hidden = !visible;
      if (visible) {
        place();
      }
    }
    // Also after the verdict: a new run started from the UI starts afresh.
    if (visible && Date.now() - lastFetch >= POLL_MS) {
      poll();
    }
  }

  setInterval(tick, 250);
})();
