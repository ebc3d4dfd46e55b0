import type { Store } from '../store/store.js';

/**
 * A setting made once for the whole database: the stored value when there is one, else `make()`'s,
 * stored. Held under the coordination lock `lock`, and read again inside it, so several processes
 * starting together on an empty database all end with the one value the first of them stored.
 */
export async function settingOnce(store: Store, key: string, make: () => string, lock = `setting:${key}`): Promise<{ value: string; created: boolean }> {
  const stored = await store.getSetting(key);
  if (stored !== undefined) return { value: stored, created: false };
  return store.coordination.withLock(lock, async () => {
    const again = await store.getSetting(key);
    if (again !== undefined) return { value: again, created: false };
    await store.setSetting(key, make());
    return { value: (await store.getSetting(key))!, created: true };
  });
}
