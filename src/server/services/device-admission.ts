import type { DeviceIdentityRecord, Store } from '../../store/store.js';
import type { AlarmView } from '../../protocol/wire.js';
import { ApiError } from '../api-error.js';
import type { Clock } from '../clock.js';
import type { ProductService } from './products.js';
import { identityAlarm, type DeviceIdentityService } from './device-identity.js';
import type { CatalogChanges, RevocationNotice } from './catalog-sync.js';

/**
 * The operator's side of device identity (`patchwire devices accept|reject|preauthorize`, the
 * `identity-conflict` alarms): re-binds and rejections revoke the device's tokens in every process of
 * the database (`revocation` notifications), and move the device's record in the change feed so
 * consolidation pushes the new binding to the mirrors.
 */
export class DeviceAdmissionService {
  constructor(
    private readonly store: Store,
    private readonly products: ProductService,
    private readonly identity: DeviceIdentityService,
    private readonly now: Clock,
    private readonly changes: CatalogChanges,
    /** Told of every revocation applied in this process (the event streams end the refused token's). */
    private readonly onRevoked: (r: RevocationNotice) => void = () => {},
  ) {}

  /** Revokes in this process at once and tells the others (which apply it with `applyRevocation`). */
  private revoke(r: RevocationNotice): void {
    this.applyRevocation(r);
    this.changes.revoked(r);
  }

  /** A revocation made here or by another process of the database. */
  applyRevocation(r: RevocationNotice): void {
    this.identity.revocations.revoke(r.deviceId, r.product, r.keyId, r.at);
    if (r.removed) this.identity.forgetCount(r.product);
    this.onRevoked(r);
  }

  /** `devices accept`: admits a pending device, or re-binds it to its pending key, keeping its record and history. */
  async accept(deviceId: string, product: string, keyId?: string): Promise<DeviceIdentityRecord> {
    const id = await this.find(deviceId, product);
    // Pinned: the key waiting may have been replaced by a stranger who knows the MAC since the
    // operator looked (found by an attacker), so `--key` names the one to bind.
    const binds = id.pendingKey?.keyId ?? id.keyId;
    if (keyId !== undefined && !binds.startsWith(keyId)) {
      throw new ApiError('PW_KEY_MISMATCH', `the key that accept would bind to ${deviceId} of ${product} is ${binds}, not ${keyId}: nothing changed. Compare with publicKey/keyId in the device's .patchwire/device-key.json; \`patchwire devices reject ${deviceId} --product ${product}\` drops a stranger's waiting key`);
    }
    const now = this.now();
    const next: DeviceIdentityRecord = id.pendingKey
      ? { ...id, publicKey: id.pendingKey.publicKey, keyId: id.pendingKey.keyId, status: 'accepted', pendingKey: null, updatedAt: now }
      : { ...id, status: 'accepted', updatedAt: now };
    await this.store.updateIdentity(next);
    if (id.pendingKey) this.revoke({ deviceId, product, keyId: next.keyId, at: now.getTime() });
    await this.store.touchDevice(deviceId, product);
    return next;
  }

  /** `devices reject`: drops a pending key (the device keeps its bound key), else rejects the device. */
  async reject(deviceId: string, product: string): Promise<DeviceIdentityRecord> {
    const id = await this.find(deviceId, product);
    const now = this.now();
    const next: DeviceIdentityRecord = id.pendingKey ? { ...id, pendingKey: null, updatedAt: now } : { ...id, status: 'rejected', updatedAt: now };
    await this.store.updateIdentity(next);
    if (!id.pendingKey) this.revoke({ deviceId, product, keyId: null, at: now.getTime() });
    await this.store.touchDevice(deviceId, product);
    return next;
  }

  /** `devices preauthorize`: admitted at its first auth even under `approve` (with this key only, when given). */
  async preauthorize(deviceId: string, product: string, publicKey: string | null): Promise<void> {
    this.products.require(product);
    await this.store.putPreauthorization({ deviceId, product, publicKey, createdAt: this.now() });
  }

  /** After `devices remove`: its tokens stop at once, and the cap counts anew. */
  removed(deviceId: string, product: string): void {
    this.revoke({ deviceId, product, keyId: null, at: this.now().getTime(), removed: true });
  }

  async conflicts(product?: string): Promise<AlarmView[]> {
    return (await this.store.listIdentities({ conflicts: true, ...(product ? { product } : {}) })).map(identityAlarm);
  }

  private async find(deviceId: string, product: string): Promise<DeviceIdentityRecord> {
    this.products.require(product);
    const id = await this.store.getIdentity(deviceId, product);
    if (!id) throw new ApiError('PW_UNKNOWN_DEVICE', `${product} has no device ${deviceId} that authenticated: \`patchwire devices --product ${product}\` lists them`);
    return id;
  }
}
