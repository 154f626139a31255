/*
 * flapping-pack: the server-resources chart, drawn with uPlot (vendor/uplot).
 * Shared by the web UI tab (tab.js) and the --html report (inlined by pack/html_report.py).
 *
 * Data comes from /flapping-pack/timeline.json (pack/web_ui.py chart_data): columns of
 * seconds-from-first-sample and one column per series (null = not observed), plus the
 * phases as [start, end] spans drawn as shaded bands with their names (and round, "settle 2").
 */
(function (global) {
  "use strict";

  var SERIES = [
    { key: "rss_mb", label: "Memory (MB)", scale: "MB", color: "#1e88e5" },
    { key: "open_fds", label: "Open fds", scale: "count", color: "#fb8c00" },
    { key: "held_connections", label: "Held connections", scale: "count", color: "#43a047" },
    // Dashed: agents often equal held connections, and would hide that line.
    { key: "agents", label: "Agents", scale: "count", color: "#8e24aa", dash: [8, 6] },
    // Only with a stream: in the conversation (null otherwise): the users' lost stream messages so far.
    { key: "messages_lost", label: "Messages lost", scale: "count", color: "#e53935", dash: [2, 4] },
  ];

  var PHASE_FILL = {
    baseline: "rgba(96, 125, 139, 0.16)",
    flapping: "rgba(255, 152, 0, 0.16)",
    settle: "rgba(76, 175, 80, 0.16)",
  };

  function columns(data) {
    return [data.t_s].concat(
      SERIES.map(function (s) {
        return data[s.key];
      })
    );
  }

  // Shaded bands behind the series, the phase's name at the top of each band.
  function phasesPlugin(state) {
    function eachBand(u, draw) {
      var top = u.bbox.top;
      var height = u.bbox.height;
      state.phases.forEach(function (p) {
        var x0 = u.valToPos(p.start_s, "x", true);
        var x1 = u.valToPos(p.end_s, "x", true);
        var left = Math.max(x0, u.bbox.left);
        var right = Math.min(x1, u.bbox.left + u.bbox.width);
        if (right > left) {
          draw(p, left, right, top, height);
        }
      });
    }
    return {
      hooks: {
        drawClear: [
          function (u) {
            u.ctx.save();
            eachBand(u, function (p, left, right, top, height) {
              u.ctx.fillStyle = PHASE_FILL[p.phase] || "rgba(158, 158, 158, 0.16)";
              u.ctx.fillRect(left, top, right - left, height);
            });
            u.ctx.restore();
          },
        ],
        draw: [
          function (u) {
            var ratio = global.devicePixelRatio || 1;
            u.ctx.save();
            u.ctx.fillStyle = state.textColor;
            u.ctx.font = 12 * ratio + "px sans-serif";
            u.ctx.textBaseline = "top";
            eachBand(u, function (p, left, right, top) {
              var label = p.label || p.phase; // "flapping 2": the phase and its round
              if (u.ctx.measureText(label).width < right - left - 8 * ratio) {
                u.ctx.fillText(label, left + 4 * ratio, top + 4 * ratio);
              }
            });
            u.ctx.restore();
          },
        ],
      },
    };
  }

  function options(el, state) {
    var axis = { stroke: state.textColor, grid: { stroke: state.gridColor }, ticks: { stroke: state.gridColor } };
    return {
      width: Math.max(320, el.clientWidth || 800),
      height: 320,
      scales: { x: { time: false } },
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      series: [{ label: "t (s)", value: function (u, v) { return v == null ? "-" : v.toFixed(1) + " s"; } }].concat(
        SERIES.map(function (s) {
          return { label: s.label, scale: s.scale, stroke: s.color, width: 2, dash: s.dash, spanGaps: false };
        })
      ),
      axes: [
        Object.assign({ label: "seconds since the first sample" }, axis),
        Object.assign({ scale: "MB", label: "memory (MB)" }, axis),
        Object.assign({}, axis, { scale: "count", side: 1, label: "fds / connections / agents / lost", grid: { show: false } }),
      ],
      plugins: [phasesPlugin(state)],
    };
  }

  /** Draw the chart into `el`; returns {update(data)} for live refreshes. */
  function render(el, data, colors) {
    var UPlot = global.uPlot;
    var state = {
      phases: data.phases || [],
      textColor: (colors && colors.text) || "#333",
      gridColor: (colors && colors.grid) || "rgba(128, 128, 128, 0.25)",
    };
    var plot = new UPlot(options(el, state), columns(data), el);
    function resize() {
      var width = Math.max(320, el.clientWidth || 800);
      if (width !== plot.width) {
        plot.setSize({ width: width, height: 320 });
      }
    }
    global.addEventListener("resize", resize);
    return {
      update: function (next) {
        state.phases = next.phases || [];
        resize();
        plot.setData(columns(next));
      },
    };
  }

  global.flappingPackChart = { render: render, series: SERIES };
})(window);
