/** Longest sleep SWUpdate can read: it parses `HH:MM:SS` with strptime's %H (0-23). */
export const MAX_SLEEP_SECONDS = 23 * 3600 + 59 * 60 + 59;

/** `config.polling.sleep` as hawkBit writes it: "HH:MM:SS", from 1 s up to MAX_SLEEP_SECONDS. */
export function sleepText(seconds: number): string {
  const s = Math.min(MAX_SLEEP_SECONDS, Math.max(1, Math.ceil(seconds)));
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(Math.floor(s / 3600))}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
}
