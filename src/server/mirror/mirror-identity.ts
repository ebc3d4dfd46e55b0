import type { DeviceIdentityRecord, DeviceRecord, Sighting, Store } from '../../store/store.js';
import { ApiError } from '../api-error.js';
import type { Clock } from '../clock.js';
import type { DeviceIdentityService } from '../services/device-identity.js';
import type { SyncedDevice } from './device-sync.js';
import type { SkipTally } from './record-rules.js';

/**
 * Device identity across a primary and its mirrors (docs/security.md, "Mirrors"): the key a
 * device is bound to travels with its record. The primary merges a mirror's record only for the
 * key it has the device bound to, accepted (`admit`); a mirror takes the primary's binding and
 * status as they are (`apply`).
 */
export class MirrorIdentity {
  constructor(private readonly store: Store, private readonly identity: DeviceIdentityService, private readonly now: Clock) {}

  /**
   * The primary's rule for records a mirror sent: no key, skipped; a MAC the primary has no key
   * for, enrolled under the primary's admission policy (merged only when that accepts it); the
   * bound key, merged if the device is accepted; any other key, never merged: it becomes an
   * identity conflict as at /v1/auth (the key waits for an operator, with an alarm). Refused ones
   * are counted in `tally`. The page's bindings are read in one pass, and its new MACs enrolled
   * in one batch (DeviceIdentityService.enrolFromMirror: one read pass, one insert-if-absent
   * transaction; a MAC bound by a concurrent /v1/auth meanwhile is judged against that binding).
   */
  async admit(synced: SyncedDevice[], mirror: string, tally: SkipTally): Promise<DeviceRecord[]> {
    const out: DeviceRecord[] = [];
    const known = await this.bindings(synced);
    const now = this.now();
    const keyOf = (r: DeviceRecord) => `${r.product}\n${r.deviceId}`;
    // The MACs the primary has no key for, each once (the first record's key), enrolled as a batch.
    const fresh = new Map<string, SyncedDevice & { key: NonNullable<SyncedDevice['key']> }>();
    for (const x of synced) {
      const k = keyOf(x.record);
      if (x.key && !known.has(k) && !fresh.has(k)) fresh.set(k, x as SyncedDevice & { key: NonNullable<SyncedDevice['key']> });
    }
    const refused = new Map<string, ApiError>();
    const sightings: Sighting[] = [];
    if (fresh.size > 0) {
      const reqs = [...fresh.values()];
      const answers = await this.identity.enrolFromMirror(reqs.map(({ record: r, key }) => (
        { deviceId: r.deviceId, product: r.product, channel: r.channel, publicKey: key.publicKey, keyId: key.keyId })), mirror, now);
      for (const [i, { record: r, key }] of reqs.entries()) {
        const a = answers[i]!;
        if (a instanceof ApiError) {
          refused.set(keyOf(r), a);
          continue;
        }
        known.set(keyOf(r), a);
        // Enrolled, not accepted: listed (`devices`) with no version, as after an auth here, and pushed once accepted.
        if (a.status !== 'accepted' && a.keyId === key.keyId) sightings.push({ deviceId: r.deviceId, product: r.product, channel: r.channel, seenAt: r.lastSeenAt, source: r.source });
      }
      if (sightings.length) await this.store.recordSightings(sightings);
    }
    for (const { record: r, key } of synced) {
      const who = `device ${r.deviceId} of ${r.product}`;
      if (!key) {
        tally.add({ kind: 'no device key', text: `${who} has no key at the mirror (sent by a server from before device keys, or it never authenticated there)` });
        continue;
      }
      const k = keyOf(r);
      const id = known.get(k);
      if (!id) {
        tally.add({ kind: 'not enrolled', text: `${who}: ${refused.get(k)?.message ?? 'not enrolled'}` });
        continue;
      }
      // Compared by the key itself (the id is a hash of it): a bound key costs no hash.
      if (id.publicKey !== key.publicKey) {
        if (id.pendingKey?.publicKey !== key.publicKey) {
          await this.identity.recordConflict(id, key.publicKey, key.keyId, now, ` at mirror ${mirror}`);
          known.set(k, { ...id, pendingKey: { publicKey: key.publicKey, keyId: key.keyId, at: now } });
        }
        tally.add({ kind: 'identity conflict', text: `${who} is bound to key ${id.keyId} here, the mirror sent it under key ${key.keyId}; not merged, the key waits for \`patchwire devices accept\`` });
        continue;
      }
      if (id.status !== 'accepted') {
        tally.add({ kind: `device ${id.status}`, text: `${who} is ${id.status} here; its record is merged once an operator accepts it` });
        continue;
      }
      out.push(r);
    }
    return out;
  }

  /**
   * A mirror takes the identities its primary pushed as the primary's word: it creates or replaces
   * its own binding (key and status; a key waiting here is dropped), and stops the tokens it minted
   * for a key no longer bound, or for a device no longer accepted. Records without a key or status
   * leave this mirror's binding as it is.
   */
  async apply(synced: SyncedDevice[]): Promise<void> {
    const known = await this.bindings(synced);
    const writes: DeviceIdentityRecord[] = [];
    const revoke: Array<{ deviceId: string; product: string; keyId: string | null }> = [];
    const added = new Set<string>();
    const now = this.now();
    for (const { record: r, key, status } of synced) {
      if (!key || !status) continue;
      const k = `${r.product}\n${r.deviceId}`;
      const id = known.get(k);
      // The key bound here already keeps its id (no hash); another key's id is derived from it.
      const keyId = id && id.publicKey === key.publicKey ? id.keyId : key.keyId;
      const next: DeviceIdentityRecord = {
        deviceId: r.deviceId, product: r.product, channel: id?.channel ?? r.channel, publicKey: key.publicKey, keyId,
        status, pendingKey: null, createdAt: id?.createdAt ?? now, updatedAt: now,
      };
      known.set(k, next);
      if (!id) {
        writes.push(next);
        added.add(r.product);
        continue;
      }
      if (id.keyId === next.keyId && id.status === status && !id.pendingKey) continue;
      writes.push(next);
      if (id.keyId !== next.keyId || status !== 'accepted') revoke.push({ deviceId: r.deviceId, product: r.product, keyId: status === 'accepted' ? next.keyId : null });
    }
    // One transaction for the page (a write per device made the first sync of 100,000 devices take ~35 s).
    await this.store.putIdentities(writes);
    for (const product of added) this.identity.forgetCount(product);
    const at = this.now().getTime();
    for (const x of revoke) this.identity.revocations.revoke(x.deviceId, x.product, x.keyId, at);
  }

  /** This store's bindings of the records' devices, read in one pass (a page is bounded); updated as they change. */
  private async bindings(synced: SyncedDevice[]): Promise<Map<string, DeviceIdentityRecord>> {
    const ids = await this.store.getIdentities(synced.map((x) => x.record));
    const out = new Map<string, DeviceIdentityRecord>();
    for (const id of ids) if (id) out.set(`${id.product}\n${id.deviceId}`, id);
    return out;
  }
}
