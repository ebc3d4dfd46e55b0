import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';

/** A device token the server gave this folder (POST /v1/auth), per server URL. */
export interface CachedToken {
  token: string;
  expiresAt: string;
  keyId: string;
}

/** At most this many servers' tokens are kept (a moved server, mirrors); the oldest go first. */
const MAX_SERVERS = 8;
const MAX_FILE_BYTES = 64 * 1024;

/**
 * `.patchwire/device-tokens.json` (0600, written atomically): `{ format: 1, tokens: { [server]: CachedToken } }`.
 * Unreadable or malformed reads as empty (a token is only a cache: the agent authenticates anew).
 */
export class TokenCache {
  private readonly file: string;

  constructor(meta: string) {
    this.file = join(meta, 'device-tokens.json');
  }

  async get(server: string): Promise<CachedToken | undefined> {
    return (await this.read())[server];
  }

  async put(server: string, t: CachedToken | undefined): Promise<void> {
    const all = await this.read();
    delete all[server];
    if (t) all[server] = t;
    const keep = Object.entries(all).slice(-MAX_SERVERS);
    await writeFileAtomic(this.file, `${JSON.stringify({ format: 1, tokens: Object.fromEntries(keep) })}\n`, 0o600);
  }

  private async read(): Promise<Record<string, CachedToken>> {
    const text = await readFile(this.file, 'utf8').catch(() => '');
    if (text === '' || text.length > MAX_FILE_BYTES) return {};
    try {
      const doc = JSON.parse(text) as { format?: unknown; tokens?: Record<string, Partial<CachedToken>> };
      if (doc.format !== 1 || typeof doc.tokens !== 'object' || doc.tokens === null) return {};
      const out: Record<string, CachedToken> = {};
      for (const [server, t] of Object.entries(doc.tokens)) {
        if (typeof t?.token === 'string' && typeof t.expiresAt === 'string' && typeof t.keyId === 'string') out[server] = t as CachedToken;
      }
      return out;
    } catch {
      return {};
    }
  }
}
