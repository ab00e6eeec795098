// Analytics charts: Chart.js draws the data the page passes in #analytics-data (json_script).
// The same numbers are in tables on the page; the charts are a view of them, not the only one.
(function () {
  "use strict";

  const charts = [];
  let drawnFrom = null;

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  // "2030-03-09" -> "9 Mar" in the reader's language; the table keeps the full dates.
  function shortDay(iso) {
    const parts = String(iso).split("-").map(Number);
    if (parts.length !== 3 || parts.some(Number.isNaN)) return iso;
    return new Date(parts[0], parts[1] - 1, parts[2]).toLocaleDateString(undefined, { day: "numeric", month: "short" });
  }

  function baseOptions() {
    const reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: reduceMotion ? false : undefined,
      plugins: { legend: { position: "bottom" } },
    };
  }

  const builders = {
    callsPerDay: function (data) {
      const options = baseOptions();
      options.scales = {
        x: { stacked: true, ticks: { callback: function (value) { return shortDay(this.getLabelForValue(value)); } } },
        y: { stacked: true, beginAtZero: true, title: { display: true, text: "Calls" }, ticks: { precision: 0 } },
        handle: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
                  title: { display: true, text: "Average handle time (s)" } },
      };
      return {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: [
            { label: "Completed", data: data.completed, backgroundColor: cssVar("--accent", "#2563eb"), stack: "calls" },
            { label: "Abandoned", data: data.abandoned, backgroundColor: "#f59e0b", stack: "calls" },
            { label: "Average handle time (s)", data: data.handleSeconds, type: "line", yAxisID: "handle",
              borderColor: "#059669", backgroundColor: "#059669", spanGaps: true, pointRadius: 2 },
          ],
        },
        options: options,
      };
    },
    ticketsByCategory: function (data) {
      const options = baseOptions();
      options.indexAxis = "y";
      options.plugins.legend = { display: false };
      options.scales = { x: { beginAtZero: true, ticks: { precision: 0 } } };
      return {
        type: "bar",
        data: { labels: data.labels, datasets: [{ label: "Tickets", data: data.counts, backgroundColor: cssVar("--accent", "#2563eb") }] },
        options: options,
      };
    },
    ticketsByPriority: function (data) {
      const options = baseOptions();
      options.plugins.legend = { display: false };
      options.scales = { y: { beginAtZero: true, ticks: { precision: 0 } } };
      return {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: [{ label: "Tickets", data: data.counts, backgroundColor: ["#dc2626", "#f59e0b", cssVar("--accent", "#2563eb"), "#9ca3af"] }],
        },
        options: options,
      };
    },
    latency: function (data) {
      const options = baseOptions();
      options.scales = { y: { beginAtZero: true, title: { display: true, text: "Milliseconds" } } };
      return {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: [
            { label: "p50", data: data.p50, backgroundColor: cssVar("--accent", "#2563eb") },
            { label: "p95", data: data.p95, backgroundColor: "#93c5fd" },
          ],
        },
        options: options,
      };
    },
  };

  function draw() {
    const source = document.getElementById("analytics-data");
    // htmx settles several elements per swap; draw once per data element.
    if (source === drawnFrom) return;
    while (charts.length) charts.pop().destroy();
    drawnFrom = source;
    if (!source || typeof window.Chart === "undefined") return;
    const data = JSON.parse(source.textContent);
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      const build = builders[canvas.dataset.chart];
      if (build && data[canvas.dataset.chart]) charts.push(new window.Chart(canvas, build(data[canvas.dataset.chart])));
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
  // A new period arrives as an htmx fragment with new data and new canvases.
  document.addEventListener("htmx:afterSettle", draw);
})();
