/**
 * Reads the Prometheus text format as a scraper does: one sample per line, `name{a="x",b="y"} value`.
 * Enough for the samples patchwire writes (label values without escaped quotes).
 */
export class Scrape {
  private readonly samples = new Map<string, number>();

  constructor(readonly text: string) {
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
      this.samples.set(Scrape.key(m[1]!, labels), Number(m[3]));
    }
  }

  private static key(name: string, labels: Record<string, string>): string {
    return `${name}{${Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`).join(',')}}`;
  }

  /** The sample's value; undefined when the scrape has no such series. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    return this.samples.get(Scrape.key(name, labels));
  }

  /** Every series of a metric, as `{labels} value` lines (for failure messages and exact comparisons). */
  series(name: string): string[] {
    return [...this.samples].filter(([k]) => k.startsWith(`${name}{`)).map(([k, v]) => `${k.slice(name.length)} ${v}`).sort();
  }
}
