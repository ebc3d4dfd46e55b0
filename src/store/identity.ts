/**
 * Device identity records (issue 9, docs/security.md "Device identity"): the Ed25519 key a device
 * is bound to, its admission status, a key waiting for an operator (identity conflict), and the
 * operator's preauthorisations. Kept apart from the device records, so the check path's reads
 * and the sightings' writes are unchanged.
 */

/** How a product admits a device it has never seen: `auto` (first key wins) or `approve` (pending until accepted). */
export type AdmissionPolicy = 'auto' | 'approve';
export const ADMISSION_POLICIES: readonly AdmissionPolicy[] = ['auto', 'approve'];

export type DeviceStatus = 'accepted' | 'pending' | 'rejected';

export interface DeviceIdentityRecord {
  deviceId: string;
  product: string;
  /** The channel of its first auth (shown for a device that has no device record yet). */
  channel: string;
  /** The bound key: raw Ed25519 public key, 64 hex digits, and its id. */
  publicKey: string;
  keyId: string;
  status: DeviceStatus;
  /** A different key presented for this MAC, waiting for `devices accept` (re-bind) or `reject`. */
  pendingKey: { publicKey: string; keyId: string; at: Date } | null;
  createdAt: Date;
  updatedAt: Date;
}

/** An operator's `devices preauthorize`: accepted at first auth even under `approve`; any key when publicKey is null. */
export interface PreauthorizationRecord {
  deviceId: string;
  product: string;
  publicKey: string | null;
  createdAt: Date;
}
