import { Readable } from 'node:stream';
import type { ArtifactStore } from '../../../artifacts/artifact-store.js';
import { keyIdOf } from '../../../protocol/device-auth.js';
import { DEFAULT_CHANNEL } from '../../../protocol/names.js';
import { isVersion } from '../../../protocol/version.js';
import type { ReportRequest } from '../../../protocol/wire.js';
import { REPORT_DETAIL_MAX } from '../../../protocol/wire.js';
import { ApiError } from '../../api-error.js';
import type { Clock } from '../../clock.js';
import type { DeviceTokens } from '../../device-token.js';
import type { DeviceIdentityService } from '../../services/device-identity.js';
import type { DeviceService } from '../../services/devices.js';
import type { ProductService } from '../../services/products.js';
import type { ReleaseService } from '../../services/releases.js';
import type { SightingBatcher } from '../../services/sighting-batcher.js';
import { measureTree, menderArtifact } from './artifact.js';
import { verifyMenderAuth } from './auth.js';
import { MenderTokens, type MenderClaims } from './token.js';

/**
 * The Mender device API's domain side (docs/compat.md, "Mender"). A Mender device is a patchwire
 * device: its MAC and the product its device_type names key one registry row and one identity
 * (its RSA key is kept where an agent's Ed25519 key is, as SubjectPublicKeyInfo DER in hex: the
 * DER names its algorithm, so no column says which); it checks on the `stable` channel through
 * DeviceService.check (admission, staged rollouts and schedule as for an agent) and its status
 * reports are DeviceService.report's reports.
 */
export interface MenderOptions {
  store: { artifacts: ArtifactStore };
  tokens: DeviceTokens;
  identity: DeviceIdentityService;
  devices: DeviceService;
  products: ProductService;
  releases: ReleaseService;
  sightings: SightingBatcher;
  publicUrl: () => string;
  source: () => string;
  now: Clock;
  warn: (obj: object, msg: string) => void;
  tokenTtlMs: number;
  /** Largest uncompressed tree an artifact is built from. */
  maxTreeBytes?: number;
  /** How long a `failure` waits for its log before it is recorded without one. */
  logWaitMs?: number;
}

export interface MenderDeployment {
  id: string;
  artifact: { artifact_name: string; source: { uri: string; expire: string }; device_types_compatible: string[] };
}

interface Built { product: string; version: string; dest: string; releaseSha: string; sha256: string; length: number }

/** The Mender statuses the client sends, and what each becomes in the device's history. */
export const MENDER_STATUSES = ['downloading', 'installing', 'rebooting', 'success', 'failure', 'already-installed', 'pause_before_installing', 'pause_before_committing', 'pause_before_rebooting'] as const;
export type MenderStatus = (typeof MENDER_STATUSES)[number];

/** The statuses of an update under way: a withdrawn deployment answers them 409 (the final ones are recorded as they come). */
const IN_PROGRESS: ReadonlySet<MenderStatus> = new Set(['downloading', 'installing', 'rebooting', 'pause_before_installing', 'pause_before_committing', 'pause_before_rebooting']);

const MAX_BUILT = 1000;
const MAX_REMEMBERED = 10_000;
const MAX_WAITING_LOGS = 1000;
const NO_DEST_WARN_MS = 3600_000;

/** `<product>@<version>`: the deployment id names the release; neither part can hold an `@`. */
export function deploymentId(product: string, version: string): string {
  return `${product}@${version}`;
}

export function parseDeploymentId(id: string): { product: string; version: string } | undefined {
  const at = id.indexOf('@');
  if (at <= 0) return undefined;
  const product = id.slice(0, at);
  const version = id.slice(at + 1);
  return isVersion(version) ? { product, version } : undefined;
}

export class MenderService {
  readonly #tokens: MenderTokens;
  readonly #built = new Map<string, Built>();
  readonly #building = new Map<string, Promise<Built>>();
  /** The last status per device and deployment: a repeated one changes nothing. */
  readonly #last = new Map<string, string>();
  /** `failure` statuses whose log has not come yet (the client sends the log right after). */
  readonly #waiting = new Map<string, { req: ReportRequest; timer: NodeJS.Timeout }>();
  readonly #noDestWarned = new Map<string, number>();

  constructor(private readonly o: MenderOptions) {
    this.#tokens = new MenderTokens(o.tokens);
  }

  /** auth_requests: the token for a correctly signed request (whether the device is admitted is judged per product, at its next call). */
  auth(body: Buffer, signature: string | string[] | undefined): string {
    const a = verifyMenderAuth(body, signature);
    const now = this.o.now().getTime();
    return this.#tokens.mint({ deviceId: a.deviceId, keyId: keyIdOf(a.publicKeyDer.toString('hex')), publicKeyDer: a.publicKeyDer, issuedAt: now, expiresAt: now + this.o.tokenTtlMs });
  }

  /**
   * The device behind a bearer token, admitted to `product` (its device_type) as an agent would be
   * at /v1/auth. PW_MENDER_DEVICE (401, so the client authenticates again) when pending, rejected
   * or bound to another key; PW_DEVICE_TOKEN for a bad token.
   */
  async device(authorization: string | undefined, product: string, source: string): Promise<MenderClaims> {
    const claims = this.#tokens.verify(authorization, this.o.now().getTime());
    if (typeof claims === 'string') throw new ApiError('PW_DEVICE_TOKEN', `the Mender device token is refused: ${claims}`);
    this.o.products.require(product);
    try {
      await this.o.identity.admitForeign({ deviceId: claims.deviceId, product, channel: DEFAULT_CHANNEL, publicKey: claims.publicKeyDer.toString('hex') }, claims.keyId, source);
    } catch (err) {
      if (err instanceof ApiError && (err.code === 'PW_DEVICE_PENDING' || err.code === 'PW_DEVICE_REJECTED')) throw new ApiError('PW_MENDER_DEVICE', err.message, { cause: err });
      throw err;
    }
    return claims;
  }

  /** PUT/PATCH inventory: the device is seen (its attributes are not kept). */
  inventory(claims: MenderClaims, product: string): void {
    this.o.sightings.add({ deviceId: claims.deviceId, product, channel: DEFAULT_CHANNEL, seenAt: this.o.now(), source: this.o.source() });
  }

  /**
   * deployments/next: the native check's answer for this device, as a Mender deployment of the
   * offered release, or undefined (204) when none is offered or the product has no --mender-dest.
   */
  async next(claims: MenderClaims, product: string, artifactName: string): Promise<MenderDeployment | undefined> {
    const version = isVersion(artifactName) ? artifactName : null;
    const answer = await this.o.devices.check({ deviceId: claims.deviceId, product, channel: DEFAULT_CHANNEL, version });
    if (answer.status !== 'update' || !answer.release) return undefined;
    const dest = this.o.products.menderDestOf(product);
    if (!dest) {
      const now = this.o.now().getTime();
      if ((this.#noDestWarned.get(product) ?? 0) + NO_DEST_WARN_MS <= now) {
        this.#noDestWarned.set(product, now);
        this.o.warn({ product, deviceId: claims.deviceId, version: answer.release.version },
          `Mender device ${claims.deviceId} of ${product} is offered ${answer.release.version}, but ${product} has no --mender-dest: it is told there is no update (204). ` +
          `Set the folder its directory module installs into: \`patchwire product update --product ${product} --mender-dest DIR\` (logged once an hour per product)`);
      }
      return undefined;
    }
    const built = await this.artifact(product, answer.release.version, dest);
    const uri = `${this.o.publicUrl()}${downloadPath(product, built.version, built.sha256)}`;
    return {
      id: deploymentId(product, built.version),
      artifact: {
        artifact_name: built.version,
        // The URL does not expire (content addressed, public like a release's TUF target).
        source: { uri, expire: new Date(this.o.now().getTime() + 86400_000).toISOString() },
        device_types_compatible: [product],
      },
    };
  }

  /** The Mender artifact of a release for the product's current folder: built on first use, kept in the artifact store. */
  async artifact(product: string, version: string, dest: string): Promise<Built> {
    const release = (await this.o.releases.list(product, DEFAULT_CHANNEL)).find((r) => r.version === version);
    if (!release) throw new ApiError('PW_UNKNOWN_RELEASE', `${product}/${DEFAULT_CHANNEL} has no release ${version}`);
    const key = `${product}\n${version}`;
    const known = this.#built.get(key);
    if (known && known.dest === dest && known.releaseSha === release.sha256) return known;
    let p = this.#building.get(key);
    if (!p) {
      p = this.build(product, version, dest, release.sha256, release.length).finally(() => this.#building.delete(key));
      this.#building.set(key, p);
    }
    const built = await p;
    if (built.dest !== dest) return this.artifact(product, version, dest); // the folder changed while it was built
    return built;
  }

  private async build(product: string, version: string, dest: string, releaseSha: string, releaseLength: number): Promise<Built> {
    const { artifacts } = this.o.store;
    const tree = () => artifacts.read(releaseSha);
    const digest = await measureTree(await tree(), this.o.maxTreeBytes ?? 16 * 1024 ** 3);
    const a = menderArtifact({ artifactName: version, deviceType: product, destDir: dest, tree, treeLength: releaseLength }, digest);
    const staged = await artifacts.stage(Readable.from(a.stream()), { maxLength: a.length });
    if (staged.length !== a.length) {
      await staged.discard();
      throw new Error(`the Mender artifact of ${product} ${version} came out ${staged.length} bytes, not ${a.length}`);
    }
    await staged.commit();
    const built: Built = { product, version, dest, releaseSha, sha256: staged.sha256, length: staged.length };
    if (this.#built.size >= MAX_BUILT) this.#built.delete(this.#built.keys().next().value as string);
    this.#built.set(`${product}\n${version}`, built);
    return built;
  }

  /**
   * A download: the artifact of (product, version) whose hash is `sha256`, rebuilt first when this
   * process has not built it (after a restart); undefined when it is not that release's artifact.
   */
  async served(product: string, version: string, sha256: string): Promise<Built | undefined> {
    this.o.products.require(product);
    const known = this.#built.get(`${product}\n${version}`);
    if (known?.sha256 === sha256) return known;
    const dest = this.o.products.menderDestOf(product);
    if (!dest || !isVersion(version)) return undefined;
    // Rebuilt (to know it is this release's) only when the store holds that hash, i.e. some process
    // built it for a device it offered it to: the URL needs no token, and a stranger's made-up hash
    // made the server decompress, hash and store a copy of any release (found by an attacker).
    if (!(await this.o.store.artifacts.stat(sha256))) return undefined;
    const built = await this.artifact(product, version, dest).catch((err: unknown) => {
      if (err instanceof ApiError && err.code === 'PW_UNKNOWN_RELEASE') return undefined;
      throw err;
    });
    return built?.sha256 === sha256 ? built : undefined;
  }

  read(sha256: string, range?: { start: number; end: number }): Promise<Readable> {
    return this.o.store.artifacts.read(sha256, range);
  }

  /** A deployment status: the device's report, once per status (the client repeats some). */
  async status(claims: MenderClaims, product: string, version: string, status: MenderStatus): Promise<void> {
    if (IN_PROGRESS.has(status)) {
      // As Mender's server does for an aborted deployment: 409, and the client stops before it
      // installs (at downloading or installing), then reports failure with its log.
      const why = await this.o.devices.withdrawn(product, DEFAULT_CHANNEL, version);
      if (why) {
        throw new ApiError('PW_MENDER_ABORTED', `deployment ${product}@${version} was withdrawn: ${why === 'yanked' ? `release ${version} was yanked` : `the staged rollout of ${version} was aborted`}; `
          + 'the Mender client stops this update and reports failure; it is offered the channel\'s current release at its next poll');
      }
    }
    const key = `${claims.deviceId}\n${product}\n${version}`;
    if (this.#last.get(key) === status) return;
    const current = await this.o.devices.versionOf(claims.deviceId, product);
    const base = { deviceId: claims.deviceId, product, channel: DEFAULT_CHANNEL, previousVersion: current };
    let req: ReportRequest | undefined;
    if (status === 'downloading' || status === 'installing') req = { ...base, event: status, version: current, toVersion: version };
    else if (status === 'success' || status === 'already-installed') req = current === version ? undefined : { ...base, event: 'applied', version, toVersion: version };
    else if (status === 'failure') {
      const fail: ReportRequest = { ...base, event: 'failed', version: current, toVersion: version, state: 'install', detail: `update to ${version} failed (Mender client)` };
      // Refused now, not when the log comes: a release never offered to it (PW_NOT_OFFERED) or unknown.
      await this.o.devices.checkReport(fail);
      // Recorded with the log the client sends next, or without it after logWaitMs.
      if (this.#waiting.size < MAX_WAITING_LOGS) {
        this.#waiting.get(key)?.timer && clearTimeout(this.#waiting.get(key)!.timer);
        const timer = setTimeout(() => {
          this.#waiting.delete(key);
          this.o.devices.report(fail).catch((err: unknown) => this.o.warn({ err, deviceId: claims.deviceId, product }, 'recording a Mender failure report failed'));
        }, this.o.logWaitMs ?? 30_000);
        timer.unref();
        this.#waiting.set(key, { req: fail, timer });
      } else req = fail;
    }
    // rebooting and the pause states are progress the registry has no event for.
    if (req) await this.o.devices.report(req);
    this.remember(key, status);
  }

  /** The failure log: its last lines go into the failure report's detail (bounded to the report's 1,000 characters). */
  async log(claims: MenderClaims, product: string, version: string, messages: Array<{ level?: unknown; message?: unknown }>): Promise<void> {
    const key = `${claims.deviceId}\n${product}\n${version}`;
    const waiting = this.#waiting.get(key);
    if (!waiting) return; // no failure reported for it (or recorded already): nothing to attach to
    clearTimeout(waiting.timer);
    this.#waiting.delete(key);
    const head = `${waiting.req.detail}: `;
    const lines = messages.map((m) => `${typeof m.level === 'string' ? m.level : 'info'}: ${typeof m.message === 'string' ? m.message : ''}`);
    const room = REPORT_DETAIL_MAX - head.length;
    // A NUL (binary output in the client's log) becomes U+FFFD, as the agent does: PostgreSQL text
    // cannot hold one, so the report was a 500 there that lost the failure (found by an attacker).
    let tail = lines.join('\n').replaceAll('\u0000', '\uFFFD');
    if (tail.length > room) tail = `...${tail.slice(tail.length - room + 3)}`;
    await this.o.devices.report({ ...waiting.req, detail: head + tail });
  }

  private remember(key: string, status: string): void {
    this.#last.delete(key);
    if (this.#last.size >= MAX_REMEMBERED) this.#last.delete(this.#last.keys().next().value as string);
    this.#last.set(key, status);
  }

  close(): void {
    for (const w of this.#waiting.values()) clearTimeout(w.timer);
    this.#waiting.clear();
  }
}

/** Where a device downloads the artifact (no Authorization header: the client sends none). */
export function downloadPath(product: string, version: string, sha256: string): string {
  return `/api/devices/v1/download/${encodeURIComponent(product)}/${encodeURIComponent(version)}/${sha256}.mender`;
}
