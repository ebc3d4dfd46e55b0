import semver from 'semver';

/** True when `v` is a valid semver string (strict: `1.2.3`, `1.2.3-beta.1`, no leading `v`). */
export function isVersion(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 128 && semver.valid(v) === v;
}

/** Semver precedence: negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions(a: string, b: string): number {
  return semver.compare(a, b);
}

/** True when `candidate` is higher than `current`; any version is higher than none. */
export function isHigher(candidate: string, current: string | null | undefined): boolean {
  return current == null || semver.gt(candidate, current);
}
