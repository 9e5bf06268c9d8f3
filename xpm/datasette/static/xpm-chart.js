// xpm chart: draws the series embedded in #xpm-chart-data as an SVG line/point chart.
// Self-contained (no library, no network): numeric or categorical x, numeric y.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  function el(name, attrs, parent, text) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) { node.setAttribute(k, attrs[k]); }
    if (text !== undefined) { node.textContent = text; }
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function niceTicks(lo, hi, count) {
    if (lo === hi) { lo -= 1; hi += 1; }
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / count)));
    var err = (hi - lo) / count / step;
    if (err >= 7.5) { step *= 10; } else if (err >= 3.5) { step *= 5; } else if (err >= 1.5) { step *= 2; }
    var ticks = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
      ticks.push(Math.round(v / step) * step);
    }
    return ticks;
  }

  function fmt(v) {
    if (typeof v !== "number") { return String(v); }
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) { return v.toExponential(2); }
    return String(Math.round(v * 1e6) / 1e6);
  }

  function draw(container, data) {
    var series = (data.series || []).filter(function (s) { return s.points.length; });
    if (!series.length) { return null; }
    var W = 760, H = 420, M = {top: 20, right: 180, bottom: 50, left: 70};
    var iw = W - M.left - M.right, ih = H - M.top - M.bottom;
    var xs = [], ys = [];
    series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); }); });
    var categorical = xs.some(function (v) { return typeof v !== "number"; });
    var cats = [];
    if (categorical) {
      xs.forEach(function (v) { if (cats.indexOf(String(v)) < 0) { cats.push(String(v)); } });
      cats.sort();
    }
    var xlo = categorical ? 0 : Math.min.apply(null, xs), xhi = categorical ? cats.length - 1 : Math.max.apply(null, xs);
    var ylo = Math.min.apply(null, ys), yhi = Math.max.apply(null, ys);
    if (xlo === xhi) { xlo -= 1; xhi += 1; }
    if (ylo === yhi) { ylo -= Math.abs(ylo) * 0.1 || 1; yhi += Math.abs(yhi) * 0.1 || 1; }
    var pad = (yhi - ylo) * 0.05; ylo -= pad; yhi += pad;
    function X(v) { var t = categorical ? cats.indexOf(String(v)) : v; return M.left + (t - xlo) / (xhi - xlo) * iw; }
    function Y(v) { return M.top + ih - (v - ylo) / (yhi - ylo) * ih; }

    var svg = el("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img",
                         "aria-label": data.metric + " against " + data.x});
    var grid = el("g", {"class": "grid"}, svg), axis = el("g", {"class": "axis"}, svg);
    niceTicks(ylo, yhi, 6).forEach(function (t) {
      el("line", {x1: M.left, x2: M.left + iw, y1: Y(t), y2: Y(t)}, grid);
      el("text", {x: M.left - 6, y: Y(t) + 4, "text-anchor": "end"}, axis, fmt(t));
    });
    var xticks = categorical ? cats : niceTicks(xlo, xhi, 8);
    xticks.forEach(function (t) {
      el("line", {x1: X(t), x2: X(t), y1: M.top + ih, y2: M.top + ih + 5}, axis);
      el("text", {x: X(t), y: M.top + ih + 18, "text-anchor": "middle"}, axis, fmt(t));
    });
    el("path", {d: "M" + M.left + "," + M.top + "V" + (M.top + ih) + "H" + (M.left + iw), fill: "none"}, axis);
    el("text", {x: M.left + iw / 2, y: H - 10, "text-anchor": "middle"}, axis, data.x);
    el("text", {x: 14, y: M.top + ih / 2, "text-anchor": "middle",
                transform: "rotate(-90 14 " + (M.top + ih / 2) + ")"}, axis, data.metric);

    var jobUrl = container.getAttribute("data-job-url") || "";
    series.forEach(function (s, i) {
      var color = COLORS[i % COLORS.length];
      var g = el("g", {"class": "series", "data-name": s.name}, svg);
      var pts = s.points.slice().sort(function (a, b) {
        return categorical ? cats.indexOf(String(a[0])) - cats.indexOf(String(b[0])) : a[0] - b[0];
      });
      if (pts.length > 1) {
        el("path", {d: pts.map(function (p, k) { return (k ? "L" : "M") + X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1); }).join(""),
                    fill: "none", stroke: color, "stroke-width": 2}, g);
      }
      pts.forEach(function (p) {
        var c = el("circle", {cx: X(p[0]).toFixed(1), cy: Y(p[1]).toFixed(1), r: 4, fill: color}, g);
        el("title", {}, c, s.name + ": " + data.x + "=" + fmt(p[0]) + ", " + data.metric + "=" + fmt(p[1]));
        c.addEventListener("click", function () { window.location.href = jobUrl + p[2]; });
      });
      var ly = M.top + 14 + i * 18;
      if (i < 20) {
        el("rect", {x: M.left + iw + 16, y: ly - 9, width: 10, height: 10, fill: color}, svg);
        el("text", {x: M.left + iw + 32, y: ly}, svg, s.name);
      }
    });
    container.appendChild(svg);
    return svg;
  }

  function start() {
    var container = document.getElementById("xpm-chart");
    var source = document.getElementById("xpm-chart-data");
    if (container && source) {
      var svg = draw(container, JSON.parse(source.textContent));
      container.setAttribute("data-drawn", svg ? "1" : "0");
    }
    // Other charts of a page (compare: one per result reported by step) name their data.
    document.querySelectorAll(".xpm-chart[data-source]").forEach(function (box) {
      var data = document.getElementById(box.getAttribute("data-source"));
      box.setAttribute("data-drawn", data && draw(box, JSON.parse(data.textContent)) ? "1" : "0");
    });
  }

  window.xpmChart = {draw: draw};
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
