import { Metadata, MetadataKind, Root, TargetFile, Targets } from '@tufjs/models';
import { signerFor, tufKey, type KeyPair } from './keys.js';
import { addDays, tufTime } from './expiry.js';
import { isJsonObject, type JSONValue } from './metadata-json.js';
import { DELTAS_PATH_PATTERN } from '../protocol/targets.js';

/**
 * The publisher's side of a product's TUF repository: runs on the publisher's machine (the CLI),
 * holds the offline key that signs root and targets. The server never calls these.
 */
export interface OnlineKeys {
  /** Public key hex of the server's snapshot key. */
  snapshot: string;
  /** Public key hex of the server's timestamp key. */
  timestamp: string;
  /** Public key hex of the server's deltas key: targets v1 delegates `deltas/<channel>/<name>` (the pattern deltas/ star / star) to it. */
  deltas?: string;
}

/** The delegated role that signs the deltas a server computes (docs/design.md section 3). */
export const DELTAS_ROLE = 'deltas';

/** Any JSON object as it goes over the wire (the output of Metadata.toJSON()). */
export type SignedJson = Record<string, unknown>;

const PUBLISHER_EXPIRY_DAYS = 365;

/**
 * Root v1 (consistent_snapshot true; root and targets roles: the publisher key; snapshot and
 * timestamp roles: the server's online keys; threshold 1 each; root expires in 365 days) and an
 * empty targets v1 (expires in 365 days), both signed by the publisher key.
 */
export function createInitialMetadata(opts: {
  publisher: KeyPair;
  online: OnlineKeys;
  now: Date;
}): { root: SignedJson; targets: SignedJson } {
  const expires = tufTime(addDays(opts.now, PUBLISHER_EXPIRY_DAYS));
  const signer = signerFor(opts.publisher);
  // Without `roles`, Root creates all four top-level roles with threshold 1 and no keys.
  const root = new Root({ version: 1, specVersion: '1.0.31', expires, consistentSnapshot: true });
  root.addKey(tufKey(opts.publisher.publicHex), MetadataKind.Root);
  root.addKey(tufKey(opts.publisher.publicHex), MetadataKind.Targets);
  root.addKey(tufKey(opts.online.snapshot), MetadataKind.Snapshot);
  root.addKey(tufKey(opts.online.timestamp), MetadataKind.Timestamp);
  const rootMd = new Metadata(root);
  rootMd.sign(signer);

  // Delegations are not exported by @tufjs/models' index; its JSON form builds them.
  const delegations = opts.online.deltas
    ? {
        keys: { [tufKey(opts.online.deltas).keyID]: tufKey(opts.online.deltas).toJSON() },
        roles: [{ name: DELTAS_ROLE, keyids: [tufKey(opts.online.deltas).keyID], threshold: 1, paths: [DELTAS_PATH_PATTERN], terminating: true }],
      }
    : undefined;
  const targetsMd = new Metadata(Targets.fromJSON({
    _type: 'targets', spec_version: '1.0.31', version: 1, expires, targets: {},
    ...(delegations ? { delegations } : {}),
  }));
  targetsMd.sign(signer);
  return { root: rootMd.toJSON(), targets: targetsMd.toJSON() };
}

export interface NewTarget {
  length: number;
  sha256: string;
  custom: Record<string, unknown>;
}

/**
 * The next targets version: `current` plus (or with replaced) `add` entries, version + 1, expiry
 * now + 365 days, signed by `publisher`. Throws Error when `current` is not validly signed by
 * `publisher` (a server must not trick the publisher into signing targets it did not sign before).
 */
export function nextTargets(opts: {
  current: SignedJson;
  publisher: KeyPair;
  add: Record<string, NewTarget>;
  now: Date;
}): SignedJson {
  let current: Metadata<Targets>;
  try {
    if (!isJsonObject(opts.current)) throw new TypeError('not a JSON object');
    current = Metadata.fromJSON(MetadataKind.Targets, opts.current);
  } catch (err) {
    throw new Error(`the server's current targets metadata is malformed (${(err as Error).message}); refusing to sign on top of it — check the server URL and product`, { cause: err });
  }
  try {
    tufKey(opts.publisher.publicHex).verifySignature(current);
  } catch (err) {
    throw new Error(
      `the server's current targets metadata (version ${current.signed.version}) is not signed by your publisher key ${opts.publisher.keyid}; ` +
        'refusing to sign it — use the key this product was created with, or investigate the server',
      { cause: err },
    );
  }
  const targets: Record<string, TargetFile> = { ...current.signed.targets };
  for (const [path, t] of Object.entries(opts.add)) {
    checkNewTarget(path, t);
    targets[path] = new TargetFile({ path, length: t.length, hashes: { sha256: t.sha256 }, unrecognizedFields: { custom: jsonCopy(t.custom) } });
  }
  const next = new Targets({
    version: current.signed.version + 1,
    specVersion: current.signed.specVersion,
    expires: tufTime(addDays(opts.now, PUBLISHER_EXPIRY_DAYS)),
    targets,
    // Delegations (the server's delta role) and unknown fields were signed by the publisher before.
    delegations: current.signed.delegations,
    unrecognizedFields: current.signed.unrecognizedFields,
  });
  const md = new Metadata(next);
  md.sign(signerFor(opts.publisher));
  return md.toJSON();
}

function checkNewTarget(path: string, t: NewTarget): void {
  // Target paths become URL paths and file names on devices: no absolute or parent segments.
  if (path === '' || path.startsWith('/') || path.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`target path "${path}" is not a relative path of plain segments (e.g. stable/1.2.0.tar.gz)`);
  }
  if (!Number.isSafeInteger(t.length) || t.length < 0) throw new Error(`target ${path}: length ${t.length} is not a byte count`);
  if (!/^[0-9a-f]{64}$/.test(t.sha256)) throw new Error(`target ${path}: sha256 is not 64 lower-case hex characters`);
}

/** What the wire will carry (undefined dropped, Dates as text): sign exactly that, nothing else. */
function jsonCopy(value: Record<string, unknown>): JSONValue {
  return JSON.parse(JSON.stringify(value)) as JSONValue;
}
