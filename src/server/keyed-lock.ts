// Moved to src/util/ so the store's coordination can use it (src/store may not import src/server).
export { KeyedLock } from '../util/keyed-lock.js';
