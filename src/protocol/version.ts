// Single functions, not the whole package: the waiting agent loads this, and all of semver
// (ranges included) costs it several MB of memory.
import parse from 'semver/functions/parse.js';
import compare from 'semver/functions/compare.js';

/**
 * True when `v` is a valid semver string, written plainly: `1.2.3`, `1.2.3-beta.1`, `1.2.3+build.7`;
 * no leading `v` or `=`, no spaces. (semver.valid() drops build metadata, so compare the parse.)
 */
export function isVersion(v: unknown): v is string {
  if (typeof v !== 'string' || v.length > 128) return false;
  const parsed = parse(v);
  return parsed !== null && parsed.version + (parsed.build.length ? `+${parsed.build.join('.')}` : '') === v;
}

/** Semver precedence: negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions(a: string, b: string): number {
  return compare(a, b);
}

/** True when `candidate` is higher than `current`; any version is higher than none. */
export function isHigher(candidate: string, current: string | null | undefined): boolean {
  return current == null || compare(candidate, current) > 0;
}
