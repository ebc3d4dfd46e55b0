import { createHash } from 'node:crypto';
import { Metadata, MetadataKind, MetaFile, Snapshot, TargetFile, Targets, Timestamp, type Root } from '@tufjs/models';
import { signerFor, tufKey, type KeyPair } from './keys.js';
import { DELTAS_PATH_PATTERN } from '../protocol/targets.js';
import { DELTAS_ROLE, type OnlineKeys } from './publisher.js';
import { parseExpires, tufTime } from './expiry.js';
import { isJsonObject, serialize, type JSONValue } from './metadata-json.js';

export { loadOrCreateOnlineKeys } from './online-keys.js';

/**
 * The server's side of a product's TUF repository: verifies what the publisher uploads and signs
 * snapshot and timestamp with the online keys. Metadata is kept and served as the exact bytes
 * these functions return (`JSON.stringify(metadata.toJSON())`).
 */
export class TufError extends Error {
  override name = 'TufError';
  constructor(
    readonly code: 'PW_BAD_SIGNATURE' | 'PW_BAD_METADATA' | 'PW_METADATA_VERSION',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface VerifiedMetadata {
  version: number;
  expires: Date;
  /** Exact bytes to store and serve. */
  json: string;
}

export interface VerifiedTargets extends VerifiedMetadata {
  /** target path -> { length, sha256, custom } */
  targets: Record<string, { length: number; sha256: string; custom: Record<string, unknown> }>;
}

const SHA256_RE = /^[0-9a-f]{64}$/;

/**
 * Checks an uploaded root v1: type root, version 1, consistent_snapshot true, not expired at
 * `now`, signed by its own root role (threshold), and snapshot/timestamp roles bound to exactly
 * this server's online keys. TufError otherwise.
 */
export function verifyInitialRoot(root: unknown, online: OnlineKeys, now: Date): VerifiedMetadata {
  const md = parse(MetadataKind.Root, root, 'root');
  if (md.signed.version !== 1) {
    throw new TufError('PW_METADATA_VERSION', `root metadata has version ${md.signed.version}, but a new product starts at version 1 (upload the root written by \`patchwire product create\`)`);
  }
  if (!md.signed.consistentSnapshot) {
    throw new TufError('PW_BAD_METADATA', 'root metadata has consistent_snapshot false; patchwire serves consistent snapshots only (create the root with `patchwire product create`)');
  }
  const expires = checkNotExpired(md.signed.expires, now, 'root', 'create the product root again with a correct clock');
  verifyRole(md, 'root', md, 'the root must be signed by its own root key (threshold)');
  for (const role of ['snapshot', 'timestamp'] as const) {
    const roleDef = md.signed.roles[role];
    const keyid = tufKey(online[role]).keyID;
    const key = md.signed.keys[keyid];
    const bound = roleDef !== undefined && roleDef.threshold === 1 && roleDef.keyIDs.length === 1 && roleDef.keyIDs[0] === keyid &&
      key !== undefined && key.keyType === 'ed25519' && key.scheme === 'ed25519' && key.keyVal.public === online[role];
    if (!bound) {
      throw new TufError('PW_BAD_METADATA', `root metadata does not bind the ${role} role to exactly this server's online ${role} key ${keyid} (threshold 1); create the root with \`patchwire product create\` against this server, which fetches its online keys`);
    }
  }
  return { version: 1, expires, json: serialize(md) };
}

/**
 * Checks uploaded targets against the trusted root: type targets, signed by the root's targets
 * role (threshold), version === expectedVersion (else PW_METADATA_VERSION), not expired at `now`,
 * every target has a sha256 hash. TufError otherwise.
 */
export function verifyTargets(rootJson: string, targets: unknown, expectedVersion: number, now: Date): VerifiedTargets {
  let root: Metadata<Root>;
  try {
    root = Metadata.fromJSON(MetadataKind.Root, JSON.parse(rootJson));
  } catch (err) {
    // The stored root was verified on upload; failing here means server storage is damaged.
    throw new TufError('PW_BAD_METADATA', `the product's stored root metadata does not parse (${(err as Error).message}); restore the server's data from a backup`, { cause: err });
  }
  const md = parse(MetadataKind.Targets, targets, 'targets');
  // Signature first: an unsigned upload must never learn anything from version errors.
  verifyRole(root, 'targets', md, 'sign it with this product\'s publisher key (`patchwire publish --key FILE`)');
  if (md.signed.version !== expectedVersion) {
    throw new TufError('PW_METADATA_VERSION', `targets metadata has version ${md.signed.version}, expected ${expectedVersion} (someone published meanwhile; run the publish again, it fetches the current targets)`);
  }
  const expires = checkNotExpired(md.signed.expires, now, 'targets', 'sign it again with a correct clock');
  const out: VerifiedTargets['targets'] = {};
  for (const [path, t] of Object.entries(md.signed.targets)) {
    const sha256 = t.hashes.sha256;
    if (typeof sha256 !== 'string' || !SHA256_RE.test(sha256)) {
      throw new TufError('PW_BAD_METADATA', `target ${path} has no sha256 hash of 64 lower-case hex characters (sign targets with \`patchwire publish\`)`);
    }
    out[path] = { length: t.length, sha256, custom: t.custom };
  }
  return { version: md.signed.version, expires, json: serialize(md), targets: out };
}

/** Signs snapshot `version` naming targets `targetsVersion` (with length and sha256 of targetsJson). */
export function signSnapshot(opts: {
  version: number;
  targetsVersion: number;
  targetsJson: string;
  /** The delegated deltas role's current metadata, when the product has any. */
  deltas?: { version: number; json: string };
  key: KeyPair;
  expires: Date;
}): VerifiedMetadata {
  const meta: Record<string, MetaFile> = { 'targets.json': metaFileOf(opts.targetsVersion, opts.targetsJson) };
  if (opts.deltas) meta[`${DELTAS_ROLE}.json`] = metaFileOf(opts.deltas.version, opts.deltas.json);
  const md = new Metadata(new Snapshot({ version: checkVersion(opts.version), specVersion: '1.0.31', expires: tufTime(opts.expires), meta }));
  return signWith(md, opts.key);
}

/** Signs timestamp `version` naming snapshot `snapshotVersion` (with length and sha256 of snapshotJson). */
export function signTimestamp(opts: {
  version: number;
  snapshotVersion: number;
  snapshotJson: string;
  key: KeyPair;
  expires: Date;
}): VerifiedMetadata {
  const snapshotMeta = metaFileOf(opts.snapshotVersion, opts.snapshotJson);
  const md = new Metadata(new Timestamp({ version: checkVersion(opts.version), specVersion: '1.0.31', expires: tufTime(opts.expires), snapshotMeta }));
  return signWith(md, opts.key);
}

/**
 * Signs version `version` of the delegated deltas role (targets metadata named `deltas`) with the
 * server's deltas key: the deltas this server computed, each a target under `deltas/`.
 */
export function signDeltas(opts: {
  version: number;
  targets: Record<string, { length: number; sha256: string; custom: Record<string, unknown> }>;
  key: KeyPair;
  expires: Date;
}): VerifiedMetadata {
  const targets: Record<string, TargetFile> = {};
  for (const [path, t] of Object.entries(opts.targets)) {
    targets[path] = new TargetFile({ path, length: t.length, hashes: { sha256: t.sha256 }, unrecognizedFields: { custom: t.custom as JSONValue } });
  }
  const md = new Metadata(new Targets({ version: checkVersion(opts.version), specVersion: '1.0.31', expires: tufTime(opts.expires), targets }));
  md.sign(signerFor(opts.key));
  return { version: md.signed.version, expires: new Date(md.signed.expires), json: serialize(md) };
}

/** True when the signed targets delegate `deltas/<channel>/<name>` (the pattern deltas/ star / star) to exactly this server's deltas key. */
export function delegatesDeltasTo(targetsJson: string, deltasPublicHex: string): boolean {
  const signed = (JSON.parse(targetsJson) as { signed?: { delegations?: { keys?: Record<string, { keyval?: { public?: string } }>; roles?: Array<{ name: string; keyids: string[]; paths?: string[] }> } } }).signed;
  const role = signed?.delegations?.roles?.find((r) => r.name === DELTAS_ROLE);
  if (!role || role.keyids.length !== 1 || !role.paths?.includes(DELTAS_PATH_PATTERN)) return false;
  return signed?.delegations?.keys?.[role.keyids[0]!]?.keyval?.public === deltasPublicHex;
}

function metaFileOf(version: number, json: string): MetaFile {
  const bytes = Buffer.from(json, 'utf8');
  return new MetaFile({ version: checkVersion(version), length: bytes.length, hashes: { sha256: createHash('sha256').update(bytes).digest('hex') } });
}

function signWith(md: Metadata<Snapshot> | Metadata<Timestamp>, key: KeyPair): VerifiedMetadata {
  md.sign(signerFor(key));
  return { version: md.signed.version, expires: new Date(md.signed.expires), json: serialize(md) };
}

function checkVersion(v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new TufError('PW_METADATA_VERSION', `metadata version ${v} is not a positive integer (a bug in the caller)`);
  return v;
}

function parse(kind: MetadataKind.Root, value: unknown, what: string): Metadata<Root>;
function parse(kind: MetadataKind.Targets, value: unknown, what: string): Metadata<Targets>;
function parse(kind: MetadataKind.Root | MetadataKind.Targets, value: unknown, what: string): Metadata<Root> | Metadata<Targets> {
  if (!isJsonObject(value)) {
    throw new TufError('PW_BAD_METADATA', `${what} metadata must be a JSON object with "signed" and "signatures" (upload the file patchwire wrote)`);
  }
  try {
    return kind === MetadataKind.Root ? Metadata.fromJSON(kind, value) : Metadata.fromJSON(kind, value);
  } catch (err) {
    throw new TufError('PW_BAD_METADATA', `${what} metadata is malformed: ${(err as Error).message} (upload the file patchwire wrote, unmodified)`, { cause: err });
  }
}

function verifyRole(delegator: Metadata<Root>, role: 'root' | 'targets', md: Metadata<Root> | Metadata<Targets>, todo: string): void {
  try {
    delegator.verifyDelegate(role, md);
  } catch (err) {
    throw new TufError('PW_BAD_SIGNATURE', `${role} metadata signature does not verify: ${(err as Error).message}; ${todo}`, { cause: err });
  }
}

function checkNotExpired(expiresText: string, now: Date, what: string, todo: string): Date {
  const expires = parseExpires(expiresText);
  if (!expires) throw new TufError('PW_BAD_METADATA', `${what} metadata has an unreadable expiry "${expiresText}" (${todo})`);
  if (now >= expires) throw new TufError('PW_BAD_METADATA', `${what} metadata expired at ${expiresText} (${todo})`);
  return expires;
}
