const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parses a duration such as `90s`, `15m`, `1h`, `2d`, `1h30m`, or plain seconds (`3600`).
 * Returns seconds, or undefined when the text is not a duration.
 */
export function parseDuration(text: unknown): number | undefined {
  if (typeof text === 'number') return Number.isInteger(text) && text >= 0 ? text : undefined;
  if (typeof text !== 'string') return undefined;
  const s = text.trim();
  if (/^\d+$/.test(s)) return Number(s);
  if (!/^(\d+[smhd])+$/.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/(\d+)([smhd])/g)) total += Number(m[1]) * UNIT_SECONDS[m[2]!]!;
  return total;
}

/** Formats seconds as the shortest of `Nd`, `Nh`, `Nm`, `Ns` combinations, e.g. 5400 -> `1h30m`. */
export function formatDuration(seconds: number): string {
  if (seconds === 0) return '0s';
  let rest = seconds;
  let out = '';
  for (const [u, n] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= n) { out += `${Math.floor(rest / n)}${u}`; rest %= n; }
  }
  return out;
}
