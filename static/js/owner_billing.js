// The owner's revenue page: billed minutes per day as bars. The same numbers are in the table below it.
(function () {
  "use strict";
  function draw() {
    const canvas = document.getElementById("owner-usage-chart");
    const source = document.getElementById("owner-usage-data");
    if (!canvas || !source || typeof Chart === "undefined") return;
    const data = JSON.parse(source.textContent);
    const reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    new Chart(canvas, {
      type: "bar",
      data: { labels: data.labels, datasets: [{ label: "Minutes", data: data.minutes }] },
      options: {
        responsive: true, maintainAspectRatio: false, animation: reduceMotion ? false : undefined,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
