// Charts of the customer analysis pages. Each chart is drawn from the JSON the server put on its canvas
// (labels, series with their column kind, and the link behind every point); no HTML is built from data here.
// Chart.js is fetched the first time a page has a chart, since a boosted visit runs no scripts it brings.
(function () {
  "use strict";

  // Kehu's accent first, then hues that stay apart for common colour blindness and in greyscale print.
  var PALETTE = ["#0f6e6a", "#e08a1e", "#2a63a8", "#c0392b", "#7b5ea7", "#5f9e3a", "#b8588c", "#7f8c8d"];
  var REFERENCE = "#c0392b";
  var charts = new Map(); // canvas → Chart
  var loading = null;

  function language() {
    return document.documentElement.lang || "zh-CN";
  }

  function formatter(kind, compact) {
    var lang = language();
    var count = new Intl.NumberFormat(lang, { maximumFractionDigits: 0, notation: compact ? "compact" : "standard" });
    var money = new Intl.NumberFormat(lang, {
      style: "currency", currency: "CNY", currencyDisplay: "narrowSymbol",
      maximumFractionDigits: compact ? 0 : 2, notation: compact ? "compact" : "standard"
    });
    var one = new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
    return function (value) {
      if (value === null || value === undefined) return "—";
      if (kind === "money") return money.format(value);
      if (kind === "percent") return one.format(value) + "%";
      if (kind === "rating") return one.format(value);
      return count.format(value);
    };
  }

  function loadLibrary(root) {
    if (window.Chart) return Promise.resolve();
    if (loading) return loading;
    var holder = root.closest ? root.closest("[data-chart-library]") : null;
    holder = holder || document.querySelector("[data-chart-library]");
    if (!holder) return Promise.reject(new Error("no chart library named on this page"));
    loading = new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = holder.getAttribute("data-chart-library");
      script.onload = function () { resolve(); };
      script.onerror = function () { loading = null; reject(new Error("chart library did not load")); };
      document.head.appendChild(script);
    });
    return loading;
  }

  // Series of different kinds (customers and revenue) each get an axis; the first kind on the left.
  function axesFor(series) {
    var kinds = [];
    series.forEach(function (one) { if (kinds.indexOf(one.kind) === -1) kinds.push(one.kind); });
    return kinds.slice(0, 2);
  }

  function axisId(kinds, kind) {
    return kinds.indexOf(kind) === 1 ? "y1" : "y";
  }

  function valueScales(kinds, stacked) {
    var scales = {};
    kinds.forEach(function (kind, index) {
      var id = index === 0 ? "y" : "y1";
      scales[id] = {
        position: index === 0 ? "left" : "right",
        beginAtZero: true,
        stacked: stacked,
        grid: { drawOnChartArea: index === 0 },
        ticks: { callback: formatter(kind, true), precision: kind === "count" || kind === "days" ? 0 : undefined }
      };
    });
    return scales;
  }

  function dataset(one, index, type, kinds) {
    var colour = PALETTE[index % PALETTE.length];
    return {
      type: type,
      label: one.label,
      data: one.values,
      kind: one.kind,
      yAxisID: axisId(kinds, one.kind),
      backgroundColor: type === "line" ? colour : colour + "cc",
      borderColor: colour,
      borderWidth: type === "line" ? 2 : 0,
      pointRadius: type === "line" ? 3 : 0,
      pointHoverRadius: 5,
      cubicInterpolationMode: "monotone",
      fill: false,
      order: type === "line" ? 0 : 1
    };
  }

  function config(data) {
    var kinds = axesFor(data.series);
    var type = data.kind === "stacked_bar" ? "bar" : data.kind;
    var datasets, scales;
    if (data.kind === "doughnut") {
      var values = data.series[0];
      datasets = [{
        label: values.label, data: values.values, kind: values.kind,
        backgroundColor: data.labels.map(function (_, index) { return PALETTE[index % PALETTE.length]; }),
        borderColor: "#fff", borderWidth: 2
      }];
      scales = {};
    } else if (data.kind === "pareto") {
      // One series: the cumulative share of revenue as a line over the share of customers. Several: the first
      // as bars (each row's own share), the rest as cumulative lines. Either way with the 80% mark.
      var single = data.series.length === 1;
      type = single ? "line" : "bar";
      datasets = data.series.map(function (one, index) {
        var drawn = dataset(one, index, single || index > 0 ? "line" : "bar", kinds);
        if (single) {
          drawn.fill = "origin";
          drawn.backgroundColor = PALETTE[0] + "22";
          drawn.cubicInterpolationMode = "default";
        }
        return drawn;
      });
      datasets.push({
        type: "line", label: "80%", data: data.labels.map(function () { return 80; }), kind: "percent",
        yAxisID: "y", borderColor: REFERENCE, borderWidth: 1, borderDash: [6, 4], pointRadius: 0,
        pointHoverRadius: 0, fill: false, order: 0, reference: true
      });
      scales = valueScales(kinds, false);
    } else {
      datasets = data.series.map(function (one, index) { return dataset(one, index, type, kinds); });
      scales = valueScales(kinds, data.kind === "stacked_bar");
    }
    if (type !== "doughnut") {
      scales.x = {
        stacked: data.kind === "stacked_bar",
        ticks: { autoSkip: true, maxRotation: 45, callback: function (value) {
          var text = this.getLabelForValue(value);
          return text.length > 16 ? text.slice(0, 15) + "…" : text;
        } }
      };
    }
    return {
      type: type,
      data: { labels: data.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: window.matchMedia("(prefers-reduced-motion: reduce)").matches ? false : { duration: 300 },
        interaction: { mode: type === "doughnut" ? "nearest" : "index", intersect: type === "doughnut" },
        scales: scales,
        plugins: {
          legend: {
            display: data.kind === "doughnut" || datasets.length > 1,
            position: data.kind === "doughnut" ? "right" : "top",
            labels: { boxWidth: 12 }
          },
          tooltip: {
            filter: function (item) { return !item.dataset.reference; },
            callbacks: {
              label: function (item) {
                var value = formatter(item.dataset.kind, false)(item.raw);
                return (item.dataset.label ? item.dataset.label + ": " : "") + value;
              }
            }
          }
        },
        onClick: function (event, elements, chart) {
          var hit = elements.filter(function (element) {
            return !chart.data.datasets[element.datasetIndex].reference;
          })[0];
          var link = hit && data.links[hit.index];
          if (link) window.location.assign(link);
        },
        onHover: function (event, elements) {
          var target = event.native && event.native.target;
          if (target) target.style.cursor = elements.length ? "pointer" : "default";
        }
      }
    };
  }

  function draw(canvas) {
    if (charts.has(canvas) || !canvas.isConnected) return;
    var data;
    try {
      data = JSON.parse(canvas.getAttribute("data-chart"));
    } catch (error) {
      return;
    }
    if (!data || !data.labels || !data.labels.length) return;
    charts.set(canvas, new window.Chart(canvas, config(data)));
  }

  // Chart.js leaves a style attribute on the canvas; htmx's history would bring it back as markup, which the
  // Content-Security-Policy refuses.
  function release(chart, canvas) {
    chart.destroy();
    charts.delete(canvas);
    ["style", "width", "height"].forEach(function (name) { canvas.removeAttribute(name); });
  }

  function drawWithin(root) {
    if (!(root instanceof Element || root instanceof Document)) return;
    charts.forEach(function (chart, canvas) {
      if (!canvas.isConnected) release(chart, canvas);
    });
    var canvases = Array.prototype.slice.call(root.querySelectorAll("canvas[data-chart]"));
    if (root instanceof Element && root.matches("canvas[data-chart]")) canvases.push(root);
    if (!canvases.length) return;
    loadLibrary(canvases[0]).then(function () {
      if (window.Chart && !drawWithin.configured) {
        window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
        window.Chart.defaults.color = "#39434d";
        drawWithin.configured = true;
      }
      canvases.forEach(draw);
    }).catch(function () { /* the tables under the charts hold the same figures */ });
  }

  function destroyWithin(root) {
    charts.forEach(function (chart, canvas) {
      if (root === canvas || root.contains(canvas)) release(chart, canvas);
    });
  }

  function start() {
    if (!window.htmx) return;
    window.htmx.onLoad(drawWithin);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();

  // A chart is destroyed before htmx removes its canvas (a filter change swaps the whole body).
  document.addEventListener("htmx:beforeCleanupElement", function (event) {
    if (event.target instanceof Element && event.target.matches("canvas[data-chart]")) destroyWithin(event.target);
  });
  // htmx keeps the page in its history as HTML: store plain canvases, and draw again what is still shown.
  document.addEventListener("htmx:beforeHistorySave", function () {
    destroyWithin(document.documentElement);
    requestAnimationFrame(function () { drawWithin(document); });
  });
  document.addEventListener("htmx:historyRestore", function () { drawWithin(document); });

  // Printing: fit every chart to the paper's width, drawn at once (the page is printed right after this event,
  // mid-animation otherwise), and back to the screen afterwards.
  function resizeAll() {
    charts.forEach(function (chart) {
      chart.resize();
      chart.update("none");
    });
  }
  window.addEventListener("beforeprint", resizeAll);
  window.addEventListener("afterprint", resizeAll);

  document.addEventListener("click", function (event) {
    if (event.target instanceof Element && event.target.closest("[data-print]")) window.print();
  });
})();
