// Small SVG charts drawn by hand: a plotting library would be the UI's largest file and could not come from a CDN.
const SVG = "http://www.w3.org/2000/svg";

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function fmt(v) {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2);
}

// series: [{name, points: [[x, y]], cls, axis: "left" | "right"}]; each axis scales to its own series.
function lineChart(svg, series, xLabel) {
  svg.replaceChildren();
  const W = 420, H = 220, L = 46, R = 46, T = 14, B = 34;
  const all = series.flatMap(s => s.points);
  if (!all.length) return;
  const xs = all.map(p => p[0]);
  const x0 = Math.min(0, ...xs), x1 = Math.max(...xs, 1);
  const sx = x => L + (x - x0) / (x1 - x0 || 1) * (W - L - R);
  svg.append(svgEl("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis"}));
  svg.append(svgEl("text", {x: (W + L - R) / 2, y: H - 6, class: "label", "text-anchor": "middle"}, xLabel));
  svg.append(svgEl("text", {x: sx(x1), y: H - B + 14, class: "tick", "text-anchor": "end"}, String(x1)));
  for (const side of ["left", "right"]) {
    const own = series.filter(s => (s.axis || "left") === side);
    const ys = own.flatMap(s => s.points.map(p => p[1]));
    if (!ys.length) continue;
    let y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
    const sy = y => H - B - (y - y0) / (y1 - y0) * (H - B - T);
    const ax = side === "left" ? L : W - R, anchor = side === "left" ? "end" : "start", dx = side === "left" ? -4 : 4;
    svg.append(svgEl("line", {x1: ax, y1: T, x2: ax, y2: H - B, class: "axis"}));
    svg.append(svgEl("text", {x: ax + dx, y: T + 8, class: "tick", "text-anchor": anchor}, fmt(y1)));
    svg.append(svgEl("text", {x: ax + dx, y: H - B, class: "tick", "text-anchor": anchor}, fmt(y0)));
    for (const s of own) {
      svg.append(svgEl("polyline", {points: s.points.map(p => `${sx(p[0])},${sy(p[1])}`).join(" "), class: s.cls}));
      for (const p of s.points) svg.append(svgEl("circle", {cx: sx(p[0]), cy: sy(p[1]), r: 2.5, class: `${s.cls} point`}));
    }
  }
  series.forEach((s, i) => svg.append(svgEl("text", {x: L + 6 + i * 150, y: T + 2, class: `legend ${s.cls}`}, s.name)));
}

// A histogram of counts over bin edges, with a marker at `limit` (max_length).
function histogram(svg, edges, counts, limit) {
  svg.replaceChildren();
  const W = 420, H = 160, L = 10, R = 10, T = 10, B = 28;
  const top = Math.max(...counts, 1), x0 = edges[0], x1 = edges[edges.length - 1];
  const sx = x => L + (x - x0) / (x1 - x0 || 1) * (W - L - R);
  counts.forEach((c, i) => {
    const h = c / top * (H - T - B);
    svg.append(svgEl("rect", {x: sx(edges[i]), y: H - B - h, width: Math.max(sx(edges[i + 1]) - sx(edges[i]) - 1, 1),
                               height: h, class: edges[i] >= limit ? "bar over" : "bar"}));
  });
  svg.append(svgEl("text", {x: L, y: H - 10, class: "tick"}, String(Math.round(x0))));
  svg.append(svgEl("text", {x: W - R, y: H - 10, class: "tick", "text-anchor": "end"}, String(Math.round(x1))));
  if (limit >= x0 && limit <= x1) {
    svg.append(svgEl("line", {x1: sx(limit), y1: T, x2: sx(limit), y2: H - B, class: "limit"}));
    svg.append(svgEl("text", {x: sx(limit) + 3, y: T + 10, class: "tick"}, `max_length ${limit}`));
  }
}
