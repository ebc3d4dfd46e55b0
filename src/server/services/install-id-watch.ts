/** How long two install ids of one (device id, product) count as "at once". */
export const INSTALL_ID_WINDOW_MS = 24 * 3600 * 1000;
/** Pairs remembered at most (oldest sighting dropped first): bounded memory on a large fleet. */
const MAX_ENTRIES = 200_000;

/**
 * Notices two install folders of one product that report the same device id (every folder on a
 * host gets the host's MAC): each check may carry the folder's random install id; when one
 * (device id, product) is seen with two different install ids within the window, the check gets
 * a warning (and the server logs one). In memory only and best effort: a restart forgets, and the
 * warning comes back on the next pair of checks.
 */
export class InstallIdWatch {
  private last = new Map<string, { installId: string; at: number }>();

  /** Records the sighting; returns the install id seen before within the window, if different. */
  see(deviceId: string, product: string, installId: string, now: Date): string | undefined {
    const key = `${deviceId}\u0000${product}`;
    const before = this.last.get(key);
    this.last.delete(key);
    this.last.set(key, { installId, at: now.getTime() });
    if (this.last.size > MAX_ENTRIES) this.last.delete(this.last.keys().next().value!);
    if (before && before.installId !== installId && now.getTime() - before.at < INSTALL_ID_WINDOW_MS) return before.installId;
    return undefined;
  }
}
