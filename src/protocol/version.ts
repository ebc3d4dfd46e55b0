// Single functions, not the whole package: the waiting agent loads this, and all of semver
// (ranges included) costs it several MB of memory.
import parse from 'semver/functions/parse.js';
import compare from 'semver/functions/compare.js';

/**
 * Results of the pure functions below by their arguments: a fleet runs a handful of versions, and
 * the server parses the same few strings on every check (two semver parses per comparison, one
 * per validation: ~2-4 us each, bench/fleet.ts). Bounded; emptied when full (a flood of distinct
 * strings only costs the parse it would have cost anyway).
 */
const MEMO_LIMIT = 4096;
const validMemo = new Map<string, boolean>();
const compareMemo = new Map<string, number>();

function remember<V>(memo: Map<string, V>, key: string, value: V): V {
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(key, value);
  return value;
}

/**
 * True when `v` is a valid semver string, written plainly: `1.2.3`, `1.2.3-beta.1`, `1.2.3+build.7`;
 * no leading `v` or `=`, no spaces. (semver.valid() drops build metadata, so compare the parse.)
 */
export function isVersion(v: unknown): v is string {
  if (typeof v !== 'string' || v.length > 128) return false;
  const known = validMemo.get(v);
  if (known !== undefined) return known;
  const parsed = parse(v);
  return remember(validMemo, v, parsed !== null && parsed.version + (parsed.build.length ? `+${parsed.build.join('.')}` : '') === v);
}

/** Semver precedence: negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions(a: string, b: string): number {
  const key = `${a}\u0000${b}`;
  const known = compareMemo.get(key);
  return known !== undefined ? known : remember(compareMemo, key, compare(a, b));
}

/** True when `candidate` is higher than `current`; any version is higher than none. */
export function isHigher(candidate: string, current: string | null | undefined): boolean {
  return current == null || compareVersions(candidate, current) > 0;
}
