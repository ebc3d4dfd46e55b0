import uPlot from 'uplot';

export interface FleetPoint { at: string; versions: Record<string, number> }

const COLOURS = ['#1f6feb', '#d1242f', '#1a7f37', '#9a6700', '#8250df', '#bf3989', '#0a7b83', '#6e7781'];

/**
 * Devices per version over time as a uPlot line chart in `el` (replacing what was there).
 * Returns the chart, to destroy when the page changes.
 */
export function fleetChart(el: HTMLElement, points: FleetPoint[], width: number): uPlot {
  const versions = [...new Set(points.flatMap((p) => Object.keys(p.versions)))].sort();
  const xs = points.map((p) => Date.parse(p.at) / 1000);
  const data: uPlot.AlignedData = [xs, ...versions.map((v) => points.map((p) => p.versions[v] ?? 0))];
  el.textContent = '';
  return new uPlot({
    width,
    height: 260,
    series: [{ label: 'time' }, ...versions.map((v, i) => ({ label: v, stroke: COLOURS[i % COLOURS.length], width: 2, points: { show: true } }))],
    axes: [{}, { label: 'devices' }],
    scales: { y: { range: (_u: uPlot, _min: number, max: number) => [0, Math.max(1, max)] } },
  }, data, el);
}
