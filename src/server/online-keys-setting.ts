import type { Store } from '../store/store.js';
import { KeyFileError } from '../tuf/keys.js';
import { generateOnlineKeys, loadOrCreateOnlineKeys, parseOnlineKeys, serializeOnlineKeys, type OnlineKeyPairs } from '../tuf/online-keys.js';
import { settingOnce } from './setting-once.js';

const ONLINE_KEYS_SETTING = 'online_keys';

/**
 * The server's online keys. SQLite (one process per data folder) keeps them in
 * `<data>/keys/online.json` as always. A shared database (several processes, each possibly on an
 * empty --data folder) keeps them in its settings, made once under the `online-keys` lock, so
 * every process signs with the same keys (docs/security.md, "Several processes").
 */
export async function loadOnlineKeys(store: Store, dataDir: string): Promise<OnlineKeyPairs> {
  if (!store.coordination.shared) return loadOrCreateOnlineKeys(dataDir);
  const { value } = await settingOnce(store, ONLINE_KEYS_SETTING, () => serializeOnlineKeys(generateOnlineKeys()), 'online-keys');
  const keys = parseOnlineKeys(value, `(database setting ${ONLINE_KEYS_SETTING})`);
  if (!keys.deltas) throw new KeyFileError(`the database setting ${ONLINE_KEYS_SETTING} has no deltas key; restore it from a backup`);
  return keys as OnlineKeyPairs;
}
