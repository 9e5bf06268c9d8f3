// xpm charts: lines (with spread bands) and parallel coordinates, drawn as SVG.
// Self-contained (no library, no network).  The data is embedded in the page as JSON:
// #xpm-chart-data for #xpm-chart, or the element named by a chart's data-source.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  // Points of a chart drawn as circles (with a tooltip, a click) at most: past it, lines.
  var MAX_MARKS = 5000;
  // Past ten series the colours repeat with another dash pattern, so lines stay apart.
  var DASHES = ["", "6 3", "2 2", "8 3 2 3"];

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

  // The lowest and highest of numbers, in a loop: Math.min.apply(null, values) passes
  // them as arguments and overflows the stack past about 124,000 (5,000 curves of 100
  // steps drew nothing).
  function extent(values) {
    var lo = Infinity, hi = -Infinity;
    for (var i = 0; i < values.length; i++) {
      if (values[i] < lo) { lo = values[i]; }
      if (values[i] > hi) { hi = values[i]; }
    }
    return [lo, hi];
  }

  // A scale over values: linear, log10 or categorical; .pos(v) in [0, 1], .ticks().
  function scale(values, log) {
    var cats = values.some(function (v) { return typeof v !== "number"; });
    if (cats) {
      var seen = [];
      values.forEach(function (v) { if (seen.indexOf(String(v)) < 0) { seen.push(String(v)); } });
      seen.sort();
      var n = Math.max(seen.length - 1, 1);
      return {ok: function () { return true; },
              pos: function (v) { return seen.length > 1 ? seen.indexOf(String(v)) / n : 0.5; },
              ticks: function () { return seen; }};
    }
    var f = log ? function (v) { return Math.log10(v); } : function (v) { return v; };
    var ok = log ? function (v) { return typeof v === "number" && v > 0; } : function (v) { return typeof v === "number"; };
    var vs = values.filter(ok).map(f);
    var range = extent(vs), lo = range[0], hi = range[1];
    if (!vs.length) { lo = 0; hi = 1; }
    if (lo === hi) { lo -= log ? 1 : (Math.abs(lo) * 0.1 || 1); hi += log ? 1 : (Math.abs(hi) * 0.1 || 1); }
    return {ok: ok,
            pos: function (v) { return (f(v) - lo) / (hi - lo); },
            pad: function (p) { var d = (hi - lo) * p; lo -= d; hi += d; },
            ticks: function (count) {
              if (!log) { return niceTicks(lo, hi, count); }
              // Within a decade 1, 2 and 5 leave one tick or none (a loss from 0.26 to
              // 1.45 read "0.5" and "1"): the even ticks of the values themselves.
              if (hi - lo < 1) {
                return niceTicks(Math.pow(10, lo), Math.pow(10, hi), count).filter(function (t) { return t > 0; });
              }
              var out = [];
              for (var e = Math.floor(lo); e <= Math.ceil(hi); e++) {
                [1, 2, 5].forEach(function (m) {
                  var t = m * Math.pow(10, e), lt = Math.log10(t);
                  if (lt >= lo - 1e-9 && lt <= hi + 1e-9 && (m === 1 || hi - lo < 2)) { out.push(t); }
                });
              }
              return out;
            }};
  }

  // Ticks of an axis of integers only: its values themselves when they are few (2 and 4,
  // not 2, 2.5, 3, 3.5, 4: "3" is no value of the sweep), each at least ``gap`` pixels
  // from the last (``at``: a value's pixel); else the scale's ticks that are integers.
  function wholeTicks(sc, values, count, at, gap) {
    var seen = [];
    values.forEach(function (v) { if (sc.ok(v) && seen.indexOf(v) < 0) { seen.push(v); } });
    if (seen.length && seen.length <= 6) {
      var kept = [];
      seen.sort(function (a, b) { return a - b; }).forEach(function (v) {
        if (!kept.length || Math.abs(at(v) - at(kept[kept.length - 1])) >= gap) { kept.push(v); }
      });
      return kept;
    }
    return sc.ticks(count).filter(function (t) { return typeof t !== "number" || Number.isInteger(t); });
  }

  // A job's page, or the compare page of several jobs; ``at`` (a point of a curve over
  // steps: its result and step) has the compare page keep the jobs reporting there.
  function link(container, target, at) {
    if (Array.isArray(target)) {
      return (container.getAttribute("data-compare-url") || "/-/xpm/compare") + "?" +
        target.map(function (id) { return "id=" + id; }).join("&") +
        (at ? "&metric=" + encodeURIComponent(at[0]) + "&step=" + encodeURIComponent(at[1]) : "");
    }
    return (container.getAttribute("data-job-url") || "") + target;
  }

  // Past this many lines the complete legend is folded (5,000 curves made it 15,000 px).
  var LEGEND_OPEN = 60;

  function legend(container, series) {
    var list = document.createElement("ul");
    list.className = "xpm-legend";
    series.forEach(function (s, i) {
      var item = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "xpm-swatch";
      swatch.style.borderTop = "3px " + (i >= COLORS.length ? "dashed " : "solid ") + COLORS[i % COLORS.length];
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(s.name));
      list.appendChild(item);
    });
    if (series.length <= LEGEND_OPEN) { container.appendChild(list); return; }
    var fold = document.createElement("details");
    fold.className = "xpm-legend-fold";
    var summary = document.createElement("summary");
    summary.textContent = "legend: " + series.length + " lines (hover a line for its name)";
    fold.appendChild(summary);
    fold.appendChild(list);
    container.appendChild(fold);
  }

  function drawLines(container, data, W) {
    var series = (data.series || []).filter(function (s) { return s.points.length; });
    if (!series.length) { return null; }
    var H = Math.max(260, Math.min(460, Math.round(W * 0.5)));
    var M = {top: 16, right: 20, bottom: 46, left: 70};
    var iw = W - M.left - M.right, ih = H - M.top - M.bottom;
    var xs = [], ys = [];
    series.forEach(function (s) {
      s.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); });
      (s.band || []).forEach(function (b) { ys.push(b[1]); ys.push(b[2]); });
    });
    var sx = scale(xs, data.logx), sy = scale(ys, data.logy);
    if (sy.pad) { sy.pad(0.05); }
    function X(v) { return M.left + sx.pos(v) * iw; }
    function Y(v) { return M.top + ih - sy.pos(v) * ih; }
    function shown(x, y) { return sx.ok(x) && sy.ok(y); }
    // A point of several jobs is their mean (averaged on purpose or not): the axis says so.
    var yname = (data.merged > 1 ? "mean " : "") + data.metric +
      (data.average ? " (over " + data.average.replace(/^\w+:/, "") + ")" : "");
    var xname = String(data.x).replace(/^\w+:/, "");

    var svg = el("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img",
                         "aria-label": yname + " against " + xname});
    var grid = el("g", {"class": "grid"}, svg), axis = el("g", {"class": "axis"}, svg);
    sy.ticks(6).forEach(function (t) {
      el("line", {x1: M.left, x2: M.left + iw, y1: Y(t), y2: Y(t)}, grid);
      el("text", {x: M.left - 6, y: Y(t) + 4, "text-anchor": "end"}, axis, fmt(t));
    });
    var whole = xs.every(function (v) { return Number.isInteger(v); });  // steps: no 0.5
    var xcount = Math.max(2, Math.floor(iw / 90));
    (whole ? wholeTicks(sx, xs, xcount, X, 40) : sx.ticks(xcount)).forEach(function (t) {
      el("line", {x1: X(t), x2: X(t), y1: M.top + ih, y2: M.top + ih + 5}, axis);
      el("text", {x: X(t), y: M.top + ih + 18, "text-anchor": "middle"}, axis, fmt(t));
    });
    el("path", {d: "M" + M.left + "," + M.top + "V" + (M.top + ih) + "H" + (M.left + iw), fill: "none"}, axis);
    el("text", {x: M.left + iw / 2, y: H - 8, "text-anchor": "middle"}, axis, xname + (data.logx ? " (log)" : ""));
    el("text", {x: 14, y: M.top + ih / 2, "text-anchor": "middle",
                transform: "rotate(-90 14 " + (M.top + ih / 2) + ")"}, axis, yname + (data.logy ? " (log)" : ""));

    // Past some thousands of points a circle (with its tooltip) each made the page slow
    // to draw (5,000 curves of 100 steps: 500,000 circles): lines only then, each with
    // its name and its jobs on click.
    var total = 0;
    series.forEach(function (s) { total += s.points.length; });
    var marked = total <= MAX_MARKS;
    series.forEach(function (s, i) {
      var color = COLORS[i % COLORS.length];
      var g = el("g", {"class": "series", "data-name": s.name}, svg);
      var band = (s.band || []).filter(function (b) { return shown(b[0], b[1]) && shown(b[0], b[2]); });
      if (band.length > 1) {
        var up = band.map(function (b, k) { return (k ? "L" : "M") + X(b[0]).toFixed(1) + "," + Y(b[2]).toFixed(1); });
        var down = band.slice().reverse().map(function (b) { return "L" + X(b[0]).toFixed(1) + "," + Y(b[1]).toFixed(1); });
        el("path", {"class": "band", d: up.join("") + down.join("") + "Z", fill: color, "fill-opacity": 0.18, stroke: "none"}, g);
      }
      var pts = s.points.filter(function (p) { return shown(p[0], p[1]); });
      if (pts.length > 1) {
        var line = el("path", {"class": "line", d: pts.map(function (p, k) { return (k ? "L" : "M") + X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1); }).join(""),
                    fill: "none", stroke: color, "stroke-width": 2,
                    "stroke-dasharray": DASHES[Math.floor(i / COLORS.length) % DASHES.length]}, g);
        if (!marked) {
          el("title", {}, line, s.name);
          if (s.jobs && s.jobs.length) {
            line.addEventListener("click", function () {
              window.location.href = link(container, s.jobs.length === 1 ? s.jobs[0] : s.jobs);
            });
          }
        }
      }
      if (!marked && pts.length > 1) { return; }
      pts.forEach(function (p) {
        var c = el("circle", {cx: X(p[0]).toFixed(1), cy: Y(p[1]).toFixed(1), r: 4, fill: color}, g);
        // A point of a curve over steps counts its values; its jobs are the line's, of
        // which the compare page keeps those reporting at the step (a seed that failed
        // earlier has none): the page never holds every job's steps.
        var stepped = typeof p[2] === "number";
        var jobs = stepped ? (s.jobs.length === 1 ? s.jobs[0] : s.jobs) : p[2];
        var at = stepped ? [data.metric, p[0]] : null;
        var n = Array.isArray(p[2]) ? " (mean of " + p[2].length + " jobs)" :
          (typeof p[2] === "number" && p[2] > 1 ? " (mean of " + p[2] + " values)" : "");
        el("title", {}, c, s.name + ": " + xname + "=" + fmt(p[0]) + ", " + data.metric + "=" + fmt(p[1]) + n);
        c.addEventListener("click", function () { window.location.href = link(container, jobs, at); });
      });
    });
    container.appendChild(svg);
    legend(container, series);
    return svg;
  }

  function drawParallel(container, data, W) {
    var lines = data.lines || [];
    if (!lines.length) { return null; }
    // Room above the axes' names for the colour scale.
    var H = 440, M = {top: 50, right: 60, bottom: 20, left: 60};
    var iw = W - M.left - M.right, ih = H - M.top - M.bottom;
    var n = data.axes.length;
    // An axis follows the log choice made for it (the x of the form, or y: the result).
    var logs = data.log_axes || [];
    var wholes = [];  // per axis of integers only, its values (ticks: no 0.5, no 3 of 2 and 4)
    var scales = data.axes.map(function (name, k) {
      var vs = lines.map(function (l) { return l.values[k]; }).filter(function (v) { return v !== null && v !== undefined; });
      wholes.push(vs.every(function (v) { return typeof v === "number" && Number.isInteger(v); }) ? vs : null);
      return scale(vs, logs.indexOf(name) >= 0);
    });
    function AX(k) { return M.left + (n > 1 ? k / (n - 1) : 0.5) * iw; }
    function AY(k, v) { return M.top + ih - scales[k].pos(v) * ih; }
    var metric = scales[n - 1];
    var svg = el("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img",
                         "aria-label": "parallel coordinates of " + data.metric});
    var g = el("g", {"class": "lines"}, svg);
    lines.forEach(function (l) {
      var d = [], k;
      for (k = 0; k < n; k++) {
        if (l.values[k] === null || l.values[k] === undefined || !scales[k].ok(l.values[k])) { continue; }
        d.push((d.length ? "L" : "M") + AX(k).toFixed(1) + "," + AY(k, l.values[k]).toFixed(1));
      }
      var color = shade(metric.pos(l.values[n - 1]));
      var path = el("path", {"class": "job", d: d.join(""), fill: "none", stroke: color,
                             "stroke-width": 1.5, "stroke-opacity": 0.7, "data-job": l.job}, g);
      el("title", {}, path, l.job.slice(0, 8) + ": " + data.axes.map(function (a, j) { return a + "=" + fmt(l.values[j]); }).join(", "));
      path.addEventListener("click", function () { window.location.href = link(container, l.job); });
    });
    var axes = el("g", {"class": "axis"}, svg);
    data.axes.forEach(function (name, k) {
      var a = el("g", {"class": "paxis", "data-name": name}, axes);
      el("line", {x1: AX(k), x2: AX(k), y1: M.top, y2: M.top + ih}, a);
      el("text", {x: AX(k), y: M.top - 12, "text-anchor": "middle", "font-weight": "bold"}, a, name);
      var at = function (v) { return AY(k, v); };
      (wholes[k] ? wholeTicks(scales[k], wholes[k], 5, at, 14) : scales[k].ticks(5)).forEach(function (t) {
        el("text", {x: AX(k) + 4, y: AY(k, t) + 4}, a, fmt(t));
      });
    });
    colourScale(svg, data.metric, lines.map(function (l) { return l.values[n - 1]; }), metric, W - M.right);
    container.appendChild(svg);
    return svg;
  }

  // A line's colour from its result's place on the last axis: low blue, high red.
  function shade(t) {
    return "rgb(" + Math.round(40 + 200 * t) + ",70," + Math.round(240 - 200 * t) + ")";
  }

  // What the colours mean: the result's lowest and highest values drawn (``sc``: its
  // axis's scale) at the ends of a gradient, right-aligned at ``right`` above the axes.
  // None when the colours tell nothing: one value only, or words (in their order).
  var gradients = 0;
  function colourScale(svg, metric, values, sc, right) {
    var present = values.filter(function (v) { return v !== null && v !== undefined; });
    if (present.some(function (v) { return typeof v !== "number"; })) { return; }
    var vs = present.filter(function (v) { return sc.ok(v); });
    if (!vs.length) { return; }
    var range = extent(vs), lo = range[0], hi = range[1];
    if (lo === hi) { return; }
    var id = "xpm-colours-" + (++gradients);
    var grad = el("linearGradient", {id: id, x1: 0, x2: 1, y1: 0, y2: 0}, el("defs", {}, svg));
    [0, 0.5, 1].forEach(function (t) { el("stop", {offset: String(t), "stop-color": shade(t)}, grad); });
    var g = el("g", {"class": "colour-scale", "data-low": lo, "data-high": hi}, svg);
    var width = 100, x = right - width - 44;
    // 4 significant digits, as the pages' tables show results.
    var short = function (v) { return String(Number(v.toPrecision(4))); };
    el("text", {x: x - 6, y: 17, "text-anchor": "end"}, g, metric + " " + short(lo));
    el("rect", {x: x, y: 8, width: width, height: 10, fill: "url(#" + id + ")"}, g);
    el("text", {x: x + width + 6, y: 17}, g, short(hi));
  }

  function draw(container, data) {
    container.xpmData = data;
    container.textContent = "";
    var W = Math.max(320, Math.floor(container.clientWidth || 760));
    return data.lines ? drawParallel(container, data, W) : drawLines(container, data, W);
  }

  function charts() {
    var out = [];
    var main = document.getElementById("xpm-chart"), source = document.getElementById("xpm-chart-data");
    if (main && source) { out.push([main, source]); }
    // Other charts of a page (compare: one per result reported by step) name their data.
    document.querySelectorAll(".xpm-chart[data-source]").forEach(function (box) {
      out.push([box, document.getElementById(box.getAttribute("data-source"))]);
    });
    return out;
  }

  function start() {
    redraw();
    // The width follows the window: redraw at the new width once resizing pauses.
    var timer = null;
    window.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        charts().forEach(function (pair) {
          if (pair[0].xpmData) { draw(pair[0], pair[0].xpmData); }
        });
      }, 100);
    });
  }

  function redraw() {  // after a live refresh swapped in new data
    charts().forEach(function (pair) {
      var svg = pair[1] ? draw(pair[0], JSON.parse(pair[1].textContent)) : null;
      pair[0].setAttribute("data-drawn", svg ? "1" : "0");
    });
  }

  window.xpmChart = {draw: draw, redraw: redraw};
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
