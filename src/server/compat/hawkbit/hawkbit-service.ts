import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Store } from '../../../store/store.js';
import type { HawkbitTargetRecord, SwuRecord } from '../../../store/hawkbit-records.js';
import type { ArtifactStore, StagedArtifact } from '../../../artifacts/artifact-store.js';
import type { ReleaseRecord } from '../../../store/store.js';
import { normaliseMac } from '../../../protocol/mac.js';
import { isHigher } from '../../../protocol/version.js';
import { DEFAULT_CHANNEL } from '../../../protocol/names.js';
import { computeNextCheck } from '../../../protocol/next-check.js';
import type { CheckResponse } from '../../../protocol/wire.js';
import { ApiError } from '../../api-error.js';
import type { Clock } from '../../clock.js';
import type { DeviceService } from '../../services/devices.js';
import type { DeviceIdentityService } from '../../services/device-identity.js';
import type { DeviceAdmissionService } from '../../services/device-admission.js';
import type { ProductService } from '../../services/products.js';
import { checkSwu } from './swu-check.js';

/** `serve --hawkbit-interval` default: a DDI device polls hourly, as the agent checks by default. */
export const DEFAULT_HAWKBIT_INTERVAL_SECONDS = 3600;
/** The pseudo key id of devices admitted with their product's gateway token (no key of their own). */
export const GATEWAY_KEY_ID = 'dd10000000000000';
/** Longest token header accepted (ours are 48 characters). */
const MAX_TOKEN = 512;
/** configData: at most this many attributes, names and values this long. */
export const CONFIG_LIMITS = { maxKeys: 64, maxName: 64, maxValue: 256 } as const;

const sha256hex = (s: string): string => createHash('sha256').update(s).digest('hex');
/** A TargetToken's key id: what `devices` shows as the device's key (16 hex digits of the token's hash). */
const targetKeyId = (tokenHash: string): string => tokenHash.slice(0, 16);

function sameHash(hexA: string, hexB: string): boolean {
  const a = Buffer.from(hexA, 'hex');
  const b = Buffer.from(hexB, 'hex');
  return a.length === 32 && b.length === 32 && timingSafeEqual(a, b);
}

/** What a DDI request is allowed to speak for: one device of one product. */
export interface DdiTarget {
  product: string;
  deviceId: string;
  record: HawkbitTargetRecord;
}

/** The base poll's decision for a device: the action it is offered (with its .swu), and when to poll again. */
export interface PollDecision {
  swu: SwuRecord | undefined;
  sleepSeconds: number;
  answer: CheckResponse;
}

export interface FeedbackBody {
  id?: unknown;
  status?: { execution?: unknown; result?: { finished?: unknown } };
  details?: unknown;
}

/**
 * The hawkBit DDI's domain side (issue 12): DDI tokens, the action ids of releases' .swu files,
 * and the translation of polls and feedback into the device registry's own check and reports.
 * A DDI device IS a patchwire device: the offer comes from DeviceService.check (the admission
 * policy, staged rollouts and schedule of native agents), and its feedback becomes the same
 * reports (DeviceService.report).
 */
export class HawkbitService {
  constructor(
    private readonly store: Store,
    private readonly artifacts: ArtifactStore,
    private readonly products: ProductService,
    private readonly devices: DeviceService,
    private readonly identity: DeviceIdentityService,
    private readonly admission: DeviceAdmissionService,
    private readonly now: Clock,
    /** Adds a device to the registry (batched sightings), as an enrolment does. */
    private readonly sighted: (s: { deviceId: string; product: string; channel: string; seenAt: Date }) => void,
    private readonly intervalSeconds: number = DEFAULT_HAWKBIT_INTERVAL_SECONDS,
  ) {}

  /** `patchwire devices token`: a new TargetToken for the device (replacing its old one), accepted at once. */
  async issueTargetToken(product: string, rawId: string, channel = DEFAULT_CHANNEL): Promise<{ product: string; deviceId: string; channel: string; token: string; keyId: string }> {
    this.products.require(product);
    const deviceId = ddiDeviceId(rawId);
    this.devices.requireChannel(product, channel);
    const token = `pwtt_${randomBytes(32).toString('base64url')}`;
    const tokenHash = sha256hex(token);
    const keyId = targetKeyId(tokenHash);
    const now = this.now();
    const old = await this.store.hawkbit.getTarget(product, deviceId);
    await this.store.hawkbit.putTarget({
      product, deviceId, tokenHash, channel, configAt: old?.configAt ?? null, attributes: old?.attributes ?? null,
      failedAction: old?.failedAction ?? null, updatedAt: now,
    });
    // The operator names this device: it is admitted (as a preauthorised MAC is), bound to the token's key id.
    const id = await this.store.getIdentity(deviceId, product);
    if (!id) {
      await this.store.addIdentity({ deviceId, product, channel, publicKey: '', keyId, status: 'accepted', pendingKey: null, createdAt: now, updatedAt: now });
      this.sighted({ deviceId, product, channel, seenAt: now });
    } else {
      await this.store.updateIdentity({ ...id, publicKey: '', keyId, status: 'accepted', pendingKey: null, updatedAt: now });
      // The tokens of the key it was bound to (a native agent's, or an older TargetToken) stop.
      if (id.keyId !== keyId) this.admission.applyRevocation({ deviceId, product, keyId, at: now.getTime() });
    }
    return { product, deviceId, channel, token, keyId };
  }

  /** `patchwire product gateway-token`: a new GatewayToken for the product; the old one stops at once. */
  async rotateGatewayToken(product: string): Promise<{ product: string; token: string }> {
    this.products.require(product);
    const token = `pwgt_${randomBytes(32).toString('base64url')}`;
    await this.store.hawkbit.putGatewayTokenHash(product, sha256hex(token), this.now());
    return { product, token };
  }

  /**
   * Who speaks: `Authorization: TargetToken <t>` (this device's) or `GatewayToken <t>` (its
   * product's), compared as sha256 hashes in constant time. A gateway-token device the registry
   * does not know is enrolled under the product's admission policy (approve: it waits for
   * `devices accept`; a preauthorised MAC is admitted). Throws 401 PW_DDI_TOKEN, or 403 for a
   * pending or rejected device; nothing is recorded for a refused request.
   */
  async authenticate(header: string | undefined, product: string, rawId: string, source: string): Promise<DdiTarget> {
    this.products.require(product);
    const deviceId = ddiDeviceId(rawId);
    const m = typeof header === 'string' && header.length <= MAX_TOKEN ? /^(TargetToken|GatewayToken) (\S+)$/.exec(header) : null;
    if (!m) throw new ApiError('PW_DDI_TOKEN', 'no DDI token: send `Authorization: TargetToken <t>` (`patchwire devices token`) or `GatewayToken <t>` (`patchwire product gateway-token`); in SWUpdate set suricatta targettoken or gatewaytoken');
    const given = sha256hex(m[2]!);
    const record = await this.store.hawkbit.getTarget(product, deviceId);
    if (m[1] === 'TargetToken') {
      if (!record?.tokenHash || !sameHash(given, record.tokenHash)) {
        throw new ApiError('PW_DDI_TOKEN', `the TargetToken is not the one issued for device ${deviceId} of ${product}: print a new one with \`patchwire devices token --product ${product} --device ${deviceId}\``);
      }
      const id = await this.store.getIdentity(deviceId, product);
      this.judge(id?.status, deviceId, product);
      if (id!.keyId !== targetKeyId(record.tokenHash)) throw new ApiError('PW_DDI_TOKEN', `device ${deviceId} of ${product} was bound to another key since its TargetToken was issued: issue a new one with \`patchwire devices token\``);
      return { product, deviceId, record };
    }
    const gateway = await this.store.hawkbit.getGatewayTokenHash(product);
    if (!gateway || !sameHash(given, gateway)) {
      throw new ApiError('PW_DDI_TOKEN', `the GatewayToken is not ${product}'s current one: \`patchwire product gateway-token --product ${product}\` prints a new one (and stops the old)`);
    }
    const id = await this.identity.identityWithoutKey({ deviceId, product, channel: record?.channel ?? DEFAULT_CHANNEL }, GATEWAY_KEY_ID, source);
    // The gateway speaks for DDI devices only: not for a native agent's key (that device proves itself with it).
    if (id.keyId !== GATEWAY_KEY_ID && !(record?.tokenHash && id.keyId === targetKeyId(record.tokenHash))) {
      throw new ApiError('PW_DDI_TOKEN', `device ${deviceId} of ${product} is bound to a patchwire agent's key: the gateway token does not speak for it; \`patchwire devices token\` gives it a TargetToken`);
    }
    this.judge(id.status, deviceId, product);
    const now = this.now();
    const rec: HawkbitTargetRecord = record ?? { product, deviceId, tokenHash: null, channel: DEFAULT_CHANNEL, configAt: null, attributes: null, failedAction: null, updatedAt: now };
    if (!record) await this.store.hawkbit.putTarget(rec);
    return { product, deviceId, record: rec };
  }

  private judge(status: string | undefined, deviceId: string, product: string): void {
    if (status === 'accepted') return;
    if (status === 'pending') throw new ApiError('PW_DEVICE_PENDING', `device ${deviceId} of ${product} waits for approval: an operator runs \`patchwire devices accept ${deviceId} --product ${product}\``);
    if (status === 'rejected') throw new ApiError('PW_DEVICE_REJECTED', `device ${deviceId} of ${product} was rejected by an operator`);
    throw new ApiError('PW_DDI_TOKEN', `device ${deviceId} of ${product} has no identity: issue it a token with \`patchwire devices token --product ${product} --device ${deviceId}\``);
  }

  /**
   * The base poll: the native check's decision (DeviceService.check: registry, admission, rollout,
   * schedule), its release's .swu as the action (none when the release has no .swu, or this
   * device closed that action with a failure), and the sleep until the next poll: the interval,
   * pulled in to the published schedule or the device's rollout wave (computeNextCheck, as the agent).
   */
  async poll(t: DdiTarget): Promise<PollDecision> {
    const answer = await this.devices.check({ deviceId: t.deviceId, product: t.product, channel: t.record.channel, deferred: true });
    let swu: SwuRecord | undefined;
    if (answer.status === 'update' && answer.release) {
      swu = await this.store.hawkbit.getSwu(t.product, t.record.channel, answer.release.version);
      if (swu && swu.actionId === t.record.failedAction) swu = undefined;
    }
    const now = new Date(answer.serverTime);
    const next = computeNextCheck({
      now, intervalSeconds: this.intervalSeconds, deviceId: t.deviceId,
      schedule: answer.schedule ? { at: new Date(answer.schedule.at), spreadSeconds: answer.schedule.spreadSeconds } : null,
      rolloutOpens: answer.rollout?.opensAt ? { at: new Date(answer.rollout.opensAt), spreadSeconds: answer.rollout.spreadSeconds } : null,
    });
    return { swu, answer, sleepSeconds: Math.max(1, Math.ceil((next.getTime() - now.getTime()) / 1000)) };
  }

  /** The action the device asks for, if it is the one its poll offers now; else 404 (an old or foreign action). */
  async offeredAction(t: DdiTarget, actionId: number): Promise<SwuRecord> {
    const { swu } = await this.poll(t);
    if (!swu || swu.actionId !== actionId) {
      throw new ApiError('PW_NOT_FOUND', `action ${actionId} is not offered to device ${t.deviceId} of ${t.product} now: poll the base resource for the current one`);
    }
    return swu;
  }

  /** Reads a stored .swu (a served artifact: Range). */
  read(swu: SwuRecord, range?: { start: number; end: number }): Promise<Readable> {
    return this.artifacts.read(swu.sha256, range);
  }

  /**
   * Feedback on an action, as the device's history (the reports native agents write):
   * proceeding: `installing` (once per action); closed/success: `applied` (the registry moves to
   * the release); closed/failure: `failed` ("update to V failed: ...", counted by a rollout's
   * auto-halt), and the action is not offered again. A repeat of what was recorded last records nothing.
   */
  async feedback(t: DdiTarget, actionId: number, body: FeedbackBody): Promise<void> {
    const f = parseFeedback(body, actionId);
    const swu = await this.store.hawkbit.getSwuByAction(t.product, actionId);
    if (!swu || swu.channel !== t.record.channel) throw new ApiError('PW_NOT_FOUND', `${t.product} has no action ${actionId} for this device: send feedback on the action its deploymentBase named`);
    const device = await this.store.getDevice(t.deviceId, t.product);
    const current = device?.version ?? null;
    const history = await this.store.listReports(t.deviceId, t.product);
    const last = history[history.length - 1];
    const base = { deviceId: t.deviceId, product: t.product, channel: t.record.channel, toVersion: swu.version };
    // Late feedback on an older release (the device is past it) would move the registry back: ignored.
    if (current !== null && isHigher(current, swu.version)) return;
    if (f.execution === 'closed' && f.finished === 'success') {
      if (current === swu.version && last?.event === 'applied' && last.version === swu.version) return;
      await this.devices.report({ ...base, event: 'applied', version: swu.version, previousVersion: current });
      if (t.record.failedAction === actionId) await this.store.hawkbit.putTarget({ ...t.record, failedAction: null, updatedAt: this.now() });
    } else if (f.execution === 'closed' && f.finished === 'failure') {
      if (t.record.failedAction === actionId) return;
      const detail = `update to ${swu.version} failed: ${f.details || 'SWUpdate reported a failure'}`.slice(0, 1000);
      await this.devices.report({ ...base, event: 'failed', version: current, previousVersion: current, detail, state: 'install' });
      await this.store.hawkbit.putTarget({ ...t.record, failedAction: actionId, updatedAt: this.now() });
    } else if (f.execution === 'proceeding' && current !== swu.version) {
      if (last && (last.event === 'installing' || last.event === 'downloading') && last.toVersion === swu.version) return;
      await this.devices.report({ ...base, event: 'installing', version: current, previousVersion: current });
    }
  }

  /** configData: the device's attributes (bounded); from now on the base poll leaves the configData link out. */
  async configData(t: DdiTarget, body: { data?: unknown }): Promise<void> {
    const data = body?.data;
    if (data === undefined || data === null || typeof data !== 'object' || Array.isArray(data)) throw new ApiError('PW_BAD_REQUEST', 'configData needs `data`: an object of attribute names to strings');
    const entries = Object.entries(data as Record<string, unknown>);
    if (entries.length > CONFIG_LIMITS.maxKeys) throw new ApiError('PW_BAD_REQUEST', `configData holds ${entries.length} attributes; at most ${CONFIG_LIMITS.maxKeys}`);
    const attributes: Record<string, string> = {};
    for (const [k, v] of entries) {
      if (k.length < 1 || k.length > CONFIG_LIMITS.maxName || typeof v !== 'string' || v.length > CONFIG_LIMITS.maxValue) {
        throw new ApiError('PW_BAD_REQUEST', `configData attribute '${k.slice(0, 64)}' must be a name of 1-${CONFIG_LIMITS.maxName} characters with a string value of at most ${CONFIG_LIMITS.maxValue}`);
      }
      attributes[k] = v;
    }
    await this.store.hawkbit.putTarget({ ...t.record, attributes, configAt: this.now(), updatedAt: this.now() });
  }

  /**
   * Accepts an uploaded .swu beside a release (`publish --swu-*`): checks its structure (cpio
   * newc, sw-description first, then its signature) and that it is the one the publisher hashed,
   * and computes the sha1 SWUpdate checks. Throws PW_BAD_SWU / PW_ARTIFACT_MISMATCH; the caller
   * discards the staged bytes on any error. Nothing is stored until `attach`.
   */
  async inspect(staged: StagedArtifact, expected: { sha256: string; length: number }): Promise<{ sha1: string }> {
    if (staged.sha256 !== expected.sha256 || staged.length !== expected.length) {
      throw new ApiError('PW_ARTIFACT_MISMATCH', `the uploaded .swu is ${staged.length} bytes with sha256 ${staged.sha256}, not the ${expected.length} bytes with sha256 ${expected.sha256} the publisher sent: upload it again`);
    }
    await checkSwu(await staged.read());
    const sha1 = createHash('sha1');
    for await (const chunk of await staged.read()) sha1.update(chunk as Buffer);
    return { sha1: sha1.digest('hex') };
  }

  /** After the release committed: the .swu's bytes and its record (with a new action id). */
  async attach(release: ReleaseRecord, staged: StagedArtifact, sha1: string): Promise<SwuRecord> {
    await staged.commit();
    return this.store.hawkbit.putSwu({ product: release.product, channel: release.channel, version: release.version, sha256: staged.sha256, sha1, length: staged.length, createdAt: this.now() });
  }
}

/** The controller id as a device id: a MAC in any usual form (aa:bb.., AA-BB.., aabb..), as the registry holds devices. */
export function ddiDeviceId(raw: string): string {
  const id = normaliseMac(raw);
  if (!id) throw new ApiError('PW_BAD_REQUEST', `controller id '${String(raw).slice(0, 64)}' is not a MAC address: patchwire devices are MACs (set suricatta id = "aa:bb:cc:dd:ee:ff")`);
  return id;
}

const EXECUTIONS = ['closed', 'proceeding', 'canceled', 'scheduled', 'rejected', 'resumed', 'downloaded', 'download'];
const FINISHED = ['success', 'failure', 'none'];

function parseFeedback(body: FeedbackBody, actionId: number): { execution: string; finished: string; details: string } {
  if (!body || typeof body !== 'object') throw new ApiError('PW_BAD_REQUEST', 'feedback must be a JSON object {id, status: {execution, result: {finished}}, details}');
  if (body.id !== undefined && String(body.id) !== String(actionId)) throw new ApiError('PW_BAD_REQUEST', `feedback names action ${String(body.id).slice(0, 20)} but was sent for action ${actionId}`);
  const execution = body.status?.execution;
  const finished = body.status?.result?.finished ?? 'none';
  if (typeof execution !== 'string' || !EXECUTIONS.includes(execution)) throw new ApiError('PW_BAD_REQUEST', `feedback status.execution must be one of ${EXECUTIONS.join(', ')}`);
  if (typeof finished !== 'string' || !FINISHED.includes(finished)) throw new ApiError('PW_BAD_REQUEST', `feedback status.result.finished must be one of ${FINISHED.join(', ')}`);
  const list = Array.isArray(body.details) ? body.details : [];
  // A NUL becomes U+FFFD, as the agent does: PostgreSQL text cannot hold one (a 500 there, found by an attacker).
  const details = list.slice(0, 20).filter((d): d is string => typeof d === 'string' && d.length > 0).map((d) => d.slice(0, 200).replaceAll('\u0000', '\uFFFD')).join('; ');
  return { execution, finished, details };
}
