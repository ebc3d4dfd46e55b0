/**
 * Tokens this process has stopped honouring before their expiry: after a device's key was re-bound
 * (`devices accept` of a pending key), or the device was rejected or removed, a token issued up to
 * that instant is refused unless it is for the key the device is bound to now (`keyId`; none after
 * a reject or remove). An entry is needed only while such tokens can live, one token lifetime;
 * older ones are dropped, and at most `max` are kept (then the oldest go, and a token of theirs
 * lives to its expiry, at most one lifetime). In memory; the other processes of a shared database
 * get each revocation as a `revocation` notification (catalog-sync.ts), and a process that starts
 * later reads the identity at its first sight of a token (device-identity.ts requireToken).
 */
export class TokenRevocations {
  private readonly entries = new Map<string, { keyId: string | null; at: number }>();

  constructor(private readonly lifetimeMs: number, private readonly max = 100_000) {}

  revoke(deviceId: string, product: string, keepKeyId: string | null, at: number): void {
    const k = `${deviceId}\n${product}`;
    this.entries.delete(k);
    if (this.entries.size >= this.max) {
      for (const [key, e] of this.entries) if (at - e.at > this.lifetimeMs) this.entries.delete(key);
      while (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value as string);
    }
    this.entries.set(k, { keyId: keepKeyId, at });
  }

  /** Whether a token for `keyId` issued at `issuedAt` was revoked. */
  revoked(deviceId: string, product: string, keyId: string, issuedAt: number): boolean {
    if (this.entries.size === 0) return false;
    const e = this.entries.get(`${deviceId}\n${product}`);
    return e !== undefined && issuedAt <= e.at && keyId !== e.keyId;
  }
}
