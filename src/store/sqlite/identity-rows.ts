import type { DeviceIdentityRecord, DeviceStatus, PreauthorizationRecord } from '../identity.js';
import type { DeviceIdentitiesTable, PreauthorizationsTable } from './sqlite-schema.js';

/** Row conversions of the device identity tables (migration 0006). */
export function toIdentity(r: DeviceIdentitiesTable): DeviceIdentityRecord {
  return {
    deviceId: r.device_id, product: r.product, channel: r.channel, publicKey: r.public_key, keyId: r.key_id,
    status: r.status as DeviceStatus,
    pendingKey: r.pending_public_key !== null && r.pending_key_id !== null
      ? { publicKey: r.pending_public_key, keyId: r.pending_key_id, at: new Date(r.pending_at ?? 0) } : null,
    createdAt: new Date(r.created_at), updatedAt: new Date(r.updated_at),
  };
}

export function identityRow(i: DeviceIdentityRecord): DeviceIdentitiesTable {
  return {
    device_id: i.deviceId, product: i.product, channel: i.channel, public_key: i.publicKey, key_id: i.keyId, status: i.status,
    pending_public_key: i.pendingKey?.publicKey ?? null, pending_key_id: i.pendingKey?.keyId ?? null,
    pending_at: i.pendingKey ? i.pendingKey.at.getTime() : null,
    created_at: i.createdAt.getTime(), updated_at: i.updatedAt.getTime(),
  };
}

export function toPreauthorization(r: PreauthorizationsTable): PreauthorizationRecord {
  return { deviceId: r.device_id, product: r.product, publicKey: r.public_key, createdAt: new Date(r.created_at) };
}
