import { createPublicKey, verify } from 'node:crypto';
import type { DeviceIdentityRecord, PreauthorizationRecord, Sighting, Store } from '../../store/store.js';
import type { AdmissionPolicy } from '../../store/identity.js';
import { authSigningBytes, keyIdOf, type AuthRequest, type AuthResponse } from '../../protocol/device-auth.js';
import type { AlarmView } from '../../protocol/wire.js';
import { ApiError } from '../api-error.js';
import type { Clock } from '../clock.js';
import type { DeviceTokenClaims, DeviceTokens } from '../device-token.js';
import type { RateLimiter } from '../rate-limit.js';
import type { ProductService } from './products.js';
import { TokenRevocations } from './token-revocations.js';

export interface IdentityOptions {
  tokenTtlMs: number;
  /** How far a device's auth time may be from the server's clock. */
  skewMs: number;
  /** New enrolments per source address. */
  enrolLimiter: RateLimiter;
  /** Identities per product at most. */
  maxDevices: number;
  alarm: (message: string, alarm: AlarmView) => void;
  warn: (obj: object, msg: string) => void;
  /** Called for each newly enrolled device: its first sighting, so `devices` lists it (pending ones too). */
  enrolled?: (s: Omit<Sighting, 'source'>) => void;
}

/** What an enrolment needs: the signed auth request's device, product, channel and key. */
export type EnrolRequest = Pick<AuthRequest, 'deviceId' | 'product' | 'channel' | 'publicKey'>;

const accept = (mac: string, product: string) => `\`patchwire devices accept ${mac} --product ${product}\``;

/**
 * Who may speak for a device (docs/security.md, "Device identity"): the auth that binds a MAC to
 * an Ed25519 key and mints short-lived tokens, the token check of /v1/check and /v1/report (one
 * HMAC, no store read) and admission (auto, approve, preauthorised). The operator's accept and
 * reject are in device-admission.ts.
 */
export class DeviceIdentityService {
  readonly revocations: TokenRevocations;

  constructor(
    private readonly store: Store,
    private readonly products: ProductService,
    private readonly tokens: DeviceTokens,
    private readonly requireChannel: (product: string, channel: string) => void,
    private readonly now: Clock,
    private readonly o: IdentityOptions,
  ) {
    this.revocations = new TokenRevocations(o.tokenTtlMs);
  }

  /** POST /v1/auth: verifies the signed request and answers a token, or says why not. */
  async auth(req: AuthRequest, source: string): Promise<AuthResponse> {
    this.products.require(req.product);
    this.requireChannel(req.product, req.channel);
    const now = this.now();
    this.verifySignature(req, now);
    const keyId = keyIdOf(req.publicKey);
    const id = await this.store.getIdentity(req.deviceId, req.product);
    const bound = id ?? (await this.enrol(req, keyId, source, now));
    if (bound.keyId !== keyId) return this.conflict(bound, req, keyId, source, now);
    if (bound.status === 'rejected') {
      throw new ApiError('PW_DEVICE_REJECTED', `device ${req.deviceId} of ${req.product} was rejected by an operator: the server refuses it; an operator can run ${accept(req.deviceId, req.product)} to admit it`);
    }
    if (bound.status === 'pending') {
      throw new ApiError('PW_DEVICE_PENDING', `device ${req.deviceId} of ${req.product} waits for approval (key ${keyId}): an operator runs ${accept(req.deviceId, req.product)}; the agent keeps asking at its interval`);
    }
    const expiresAt = now.getTime() + this.o.tokenTtlMs;
    // Just read as accepted and bound to this key: the device's next check here needs no second read.
    const token = this.tokens.mintConfirmed({ deviceId: req.deviceId, product: req.product, keyId, issuedAt: now.getTime(), expiresAt });
    return { token, expiresAt: new Date(expiresAt).toISOString(), status: 'accepted', keyId };
  }

  /**
   * The bearer token of a check or report: made by this server, unexpired, not revoked, and for
   * this device of this product. Throws 401 PW_DEVICE_TOKEN otherwise. The first time this process
   * sees a token it also reads the device's identity from the store: it must still be accepted and
   * bound to the token's key. Revocations made by this process since are in memory; so a reject,
   * remove or re-bind holds across a restart (found by an attacker: in-memory revocations alone were
   * undone by a restart), and other processes of one database honour it at their first sight of
   * the token. One store read per token per process, then a map lookup. Returns the token's
   * claims (the event stream ends when it expires).
   */
  async requireToken(header: string | undefined, deviceId: string, product: string): Promise<DeviceTokenClaims> {
    const fix = 'authenticate with POST /v1/auth first (the patchwire agent does this by itself)';
    if (typeof header !== 'string' || !header.startsWith('Bearer ')) {
      throw new ApiError('PW_DEVICE_TOKEN', `no device token: send \`Authorization: Bearer <token>\`; ${fix}`);
    }
    const token = header.slice(7);
    const claims = this.tokens.verify(token, this.now().getTime());
    if (typeof claims === 'string') throw new ApiError('PW_DEVICE_TOKEN', `the device token is refused: ${claims}; ${fix}`);
    if (claims.deviceId !== deviceId || claims.product !== product) {
      throw new ApiError('PW_DEVICE_TOKEN', `the device token is for device ${claims.deviceId} of ${claims.product}, not ${deviceId} of ${product}: a device speaks only for itself`);
    }
    const revoked = () => new ApiError('PW_DEVICE_TOKEN', `the device token is no longer valid (the device's key was re-bound, or the device rejected or removed); ${fix}`);
    if (this.revocations.revoked(deviceId, product, claims.keyId, claims.issuedAt)) throw revoked();
    // Remembered with the verified token (device-token.ts), within the same bound.
    if (claims.confirmed) return claims;
    const id = await this.store.getIdentity(deviceId, product);
    if (!id || id.status !== 'accepted' || id.keyId !== claims.keyId) throw revoked();
    claims.confirmed = true;
    return claims;
  }

  /**
   * The Mender device API's admission (compat/mender): a key the device proved at its own auth
   * request, for the product its device_type names, judged by the same rules as auth(): enrolled
   * when the MAC is new (rate limit, cap, preauthorisation, the product's policy), a different key
   * waits as an identity conflict, a rejected or pending device is refused. Answers the accepted identity.
   */
  async admitForeign(req: EnrolRequest, keyId: string, source: string): Promise<DeviceIdentityRecord> {
    this.products.require(req.product);
    const now = this.now();
    const id = await this.store.getIdentity(req.deviceId, req.product);
    const bound = id ?? (await this.enrol(req, keyId, source, now));
    if (bound.keyId !== keyId) return this.conflict(bound, req, keyId, source, now);
    if (bound.status === 'rejected') {
      throw new ApiError('PW_DEVICE_REJECTED', `device ${req.deviceId} of ${req.product} was rejected by an operator: the server refuses it; an operator can run ${accept(req.deviceId, req.product)} to admit it`);
    }
    if (bound.status === 'pending') {
      throw new ApiError('PW_DEVICE_PENDING', `device ${req.deviceId} of ${req.product} waits for approval (key ${keyId}): an operator runs ${accept(req.deviceId, req.product)}`);
    }
    return bound;
  }

  private verifySignature(req: AuthRequest, now: Date): void {
    let ok = false;
    try {
      const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(req.publicKey, 'hex').toString('base64url') }, format: 'jwk' });
      const { signature, ...unsigned } = req;
      ok = verify(null, authSigningBytes(unsigned), key, Buffer.from(signature, 'hex'));
    } catch {
      ok = false;
    }
    if (!ok) throw new ApiError('PW_DEVICE_AUTH', 'the auth request is not signed by the key it presents: sign it with the device key (docs/protocol.md, POST /v1/auth)');
    const t = Date.parse(req.time);
    if (!Number.isFinite(t) || Math.abs(t - now.getTime()) > this.o.skewMs) {
      throw new ApiError('PW_DEVICE_AUTH', `the auth request's time ${req.time} is more than ${this.o.skewMs / 1000} s from the server's ${now.toISOString()}: set the device's clock (NTP) and retry`);
    }
  }

  /**
   * Issue 12: the identity of a device that speaks a compatibility protocol (the hawkBit DDI) and
   * so holds no Ed25519 key: bound to `keyId`, a pseudo key id its token stands for (no public
   * key). A MAC never seen is enrolled by the same rules as at /v1/auth (enrolment rate per
   * source, the --max-devices cap, a preauthorisation for any key, else the product's admission
   * policy); a known one answers its identity as it is, for the caller to judge.
   */
  async identityWithoutKey(req: Omit<EnrolRequest, 'publicKey'>, keyId: string, source: string): Promise<DeviceIdentityRecord> {
    const id = await this.store.getIdentity(req.deviceId, req.product);
    return id ?? this.enrol({ ...req, publicKey: '' }, keyId, source, this.now());
  }

  /** Enrols a MAC never bound to a key at /v1/auth: see enrolment rules in docs/security.md (a mirror's records: enrolFromMirror). */
  private async enrol(req: EnrolRequest, keyId: string, source: string, now: Date): Promise<DeviceIdentityRecord> {
    const known = await this.store.getDevice(req.deviceId, req.product);
    let status: DeviceIdentityRecord['status'] = 'accepted';
    // A device recorded before keys existed binds the first key that auths, whatever the policy.
    if (!known) {
      this.limit(source, req);
      const count = await this.countOf(req.product);
      if (count >= this.o.maxDevices) throw this.full(req.product, count);
      status = this.admission(req, await this.store.getPreauthorization(req.deviceId, req.product));
    }
    const record: DeviceIdentityRecord = {
      deviceId: req.deviceId, product: req.product, channel: req.channel, publicKey: req.publicKey, keyId, status,
      pendingKey: null, createdAt: now, updatedAt: now,
    };
    if (await this.store.addIdentity(record)) {
      this.counts.set(req.product, (this.counts.get(req.product) ?? 0) + 1);
      // An enrolled device is in the registry from now on (one waiting for approval too, so an operator sees it).
      if (!known) this.o.enrolled?.({ deviceId: req.deviceId, product: req.product, channel: req.channel, seenAt: now });
      this.o.warn({ deviceId: req.deviceId, product: req.product, keyId, status, source }, `device ${req.deviceId} of ${req.product} enrolled (${status}${known ? ', bound to its first key: recorded before device keys' : ''})`);
      return record;
    }
    // Another auth of the same MAC won the race: judge against what it stored.
    return (await this.store.getIdentity(req.deviceId, req.product))!;
  }

  /**
   * `enrol` for the new devices of one page an approved mirror sent (consolidation,
   * mirror-identity.ts), each MAC given once: the same rules (a device recorded before keys binds
   * its first key; else the per-product cap, then a preauthorisation or the product's admission
   * policy), with one read pass (devices; preauthorisations only under `approve`), one insert-if-absent transaction
   * and one log line per product for the page, not a read, a write and a line per device (the
   * first reconcile of 100,000 devices spent ~18 s of the primary's CPU on that). A MAC bound by
   * a concurrent /v1/auth between the read and the insert keeps that binding: the answer for it
   * is what the store holds, judged by the caller as before. Answers, in the requests' order, the
   * identity each device is bound to now, or the ApiError that refused it (PW_DEVICE_LIMIT).
   */
  async enrolFromMirror(reqs: Array<EnrolRequest & { keyId: string }>, mirror: string, now: Date): Promise<Array<DeviceIdentityRecord | ApiError>> {
    if (reqs.length === 0) return [];
    // Each product's policy once for the page. Under `auto` a preauthorisation changes nothing (the
    // device is accepted either way), so only the devices of products under `approve` have theirs read.
    const policies = new Map<string, AdmissionPolicy>();
    for (const r of reqs) if (!policies.has(r.product)) policies.set(r.product, this.products.admissionOf(r.product));
    const approving = reqs.filter((r) => policies.get(r.product) === 'approve');
    const [known, approvingPre] = await Promise.all([this.store.getDevices(reqs), approving.length ? this.store.getPreauthorizations(approving) : []]);
    const preOf = new Map<EnrolRequest, PreauthorizationRecord | undefined>(approving.map((r, i) => [r, approvingPre[i]]));
    const out: Array<DeviceIdentityRecord | ApiError> = [];
    const adds: DeviceIdentityRecord[] = [];
    /** Per add: its place in `out`, and whether the device was recorded before keys. */
    const slot: number[] = [];
    const firstKey: boolean[] = [];
    const reserved = new Map<string, number>();
    for (const [i, req] of reqs.entries()) {
      let status: DeviceIdentityRecord['status'] = 'accepted';
      if (!known[i]) {
        const count = (await this.countOf(req.product)) + (reserved.get(req.product) ?? 0);
        if (count >= this.o.maxDevices) {
          out.push(this.full(req.product, count));
          continue;
        }
        reserved.set(req.product, (reserved.get(req.product) ?? 0) + 1);
        status = this.admission(req, preOf.get(req), policies.get(req.product));
      }
      const record: DeviceIdentityRecord = {
        deviceId: req.deviceId, product: req.product, channel: req.channel, publicKey: req.publicKey, keyId: req.keyId, status,
        pendingKey: null, createdAt: now, updatedAt: now,
      };
      slot.push(out.length);
      firstKey.push(known[i] !== undefined);
      out.push(record);
      adds.push(record);
    }
    const added = await this.store.addIdentities(adds);
    // Lost to a concurrent auth of the same MAC: judged against what it stored.
    const lost = adds.filter((_, j) => !added[j]);
    const stored = lost.length ? await this.store.getIdentities(lost) : [];
    const tally = new Map<string, { accepted: number; pending: number; firstKey: number }>();
    let l = 0;
    for (const [j, record] of adds.entries()) {
      if (!added[j]) {
        const id = stored[l++];
        out[slot[j]!] = id ?? new ApiError('PW_UNKNOWN_DEVICE', `device ${record.deviceId} of ${record.product} was bound and removed while it was being enrolled; the next reconcile enrols it`);
        continue;
      }
      this.counts.set(record.product, (this.counts.get(record.product) ?? 0) + 1);
      let t = tally.get(record.product);
      if (!t) tally.set(record.product, (t = { accepted: 0, pending: 0, firstKey: 0 }));
      if (record.status === 'pending') t.pending++; else t.accepted++;
      if (firstKey[j]) t.firstKey++;
    }
    for (const [product, t] of tally) {
      const n = t.accepted + t.pending;
      this.o.warn({ product, source: mirror, enrolled: n, accepted: t.accepted, pending: t.pending, boundFirstKey: t.firstKey },
        `${n} devices of ${product} enrolled from mirror ${mirror} (${t.accepted} accepted, ${t.pending} pending${t.firstKey ? `; ${t.firstKey} bound to their first key: recorded before device keys` : ''})`);
    }
    return out;
  }

  /** The per-product cap's refusal. */
  private full(product: string, count: number): ApiError {
    return new ApiError('PW_DEVICE_LIMIT', `${product} has ${count} devices, the most this server admits (serve --max-devices ${this.o.maxDevices}): remove devices with \`patchwire devices remove\`, or restart the server with a higher --max-devices`);
  }

  /**
   * A new MAC's status: accepted when preauthorised (for any key, or this one) or under `auto`;
   * pending under `approve`. `policy`: the product's, when the caller read it already.
   */
  private admission(req: EnrolRequest, pre: PreauthorizationRecord | undefined, policy = this.products.admissionOf(req.product)): DeviceIdentityRecord['status'] {
    const preauthorised = pre !== undefined && (pre.publicKey === null || pre.publicKey === req.publicKey);
    return !preauthorised && policy === 'approve' ? 'pending' : 'accepted';
  }

  /** A known MAC with a different key: never re-bound silently; the key waits, with an alarm. */
  private async conflict(id: DeviceIdentityRecord, req: EnrolRequest, keyId: string, source: string, now: Date): Promise<never> {
    if (id.pendingKey?.keyId !== keyId) {
      this.limit(source, req);
      await this.recordConflict(id, req.publicKey, keyId, now);
    }
    throw new ApiError('PW_DEVICE_PENDING', `device ${req.deviceId} of ${req.product} is bound to another key (${id.keyId}); this key (${keyId}) waits for an operator: ${accept(req.deviceId, req.product)} re-binds it. ` +
      'A second install folder on the same host needs its own device id: `patchwire init --device-id MAC`');
  }

  /**
   * Keeps `publicKey` as the pending key of a device bound to another one and raises the
   * identity-conflict alarm (at /v1/auth, and when a mirror sent a record under that key: `at`
   * names where it was presented).
   */
  async recordConflict(id: DeviceIdentityRecord, publicKey: string, keyId: string, now: Date, at = ''): Promise<void> {
    const pendingKey = { publicKey, keyId, at: now };
    await this.store.updateIdentity({ ...id, pendingKey, updatedAt: now });
    this.o.alarm(
      `identity-conflict: device ${id.deviceId} of ${id.product} presented key ${keyId}${at}, but it is bound to key ${id.keyId}; the new key waits. ` +
      `If the device was replaced or re-installed, run ${accept(id.deviceId, id.product)} (re-binds, keeps its history); else \`patchwire devices reject ${id.deviceId} --product ${id.product}\``,
      identityAlarm({ ...id, pendingKey }),
    );
  }

  private limit(source: string, req: EnrolRequest): void {
    const d = this.o.enrolLimiter.take(source);
    if (d.ok) return;
    if (d.firstRefusal) this.o.warn({ source, product: req.product }, `enrolment rate limit reached for ${source}: refusing new devices from it for ${d.retryAfterSeconds} s (serve --enrol-limit)`);
    throw new ApiError('PW_RATE_LIMITED', `too many new devices from ${source}: retry after ${d.retryAfterSeconds} s (the server's --enrol-limit); enrolled devices are not affected`, {
      headers: { 'retry-after': String(d.retryAfterSeconds) },
    });
  }

  private readonly counts = new Map<string, number>();
  private async countOf(product: string): Promise<number> {
    let n = this.counts.get(product);
    if (n === undefined) this.counts.set(product, (n = await this.store.countIdentities(product)));
    return n;
  }

  /** The cap counts this product anew at its next enrolment (after a device was removed). */
  forgetCount(product: string): void {
    this.counts.delete(product);
  }
}

export function identityAlarm(id: DeviceIdentityRecord): AlarmView {
  return { kind: 'identity-conflict', product: id.product, channel: id.channel, deviceId: id.deviceId, keyId: id.keyId, pendingKeyId: id.pendingKey!.keyId, since: id.pendingKey!.at.toISOString() };
}
