// A tiny inline-SVG sparkline: no canvas, no library, sharp at any zoom.

const NS = "http://www.w3.org/2000/svg";

/**
 * @param {number[]} points  values, oldest first
 * @param {{width?: number, height?: number, label?: string, trend?: string}} options
 *   trend ("up" | "down" | "flat") picks the colour through CSS.
 */
export function sparkline(points, {width = 80, height = 24, label = "", trend = "flat"} = {}) {
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("class", `spark ${trend}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const values = points.filter(Number.isFinite);
  if (values.length < 2) return svg;
  const min = Math.min(...values);
  const span = Math.max(...values) - min || 1;
  const step = width / (values.length - 1);
  const coords = values.map((v, i) =>
    `${(i * step).toFixed(1)},${(height - 2 - ((v - min) / span) * (height - 4)).toFixed(1)}`);
  const line = document.createElementNS(NS, "polyline");
  line.setAttribute("points", coords.join(" "));
  svg.append(line);
  return svg;
}
