/**
 * The URL layout of API v1 (docs/protocol.md), for both sides: the agent builds its URLs with
 * these functions, the server registers its routes from the same parts and parses requested file
 * names with the parsers beside the builders. Servers serve consistent snapshots: metadata by
 * version (`N.<role>.json`), targets by content hash (`<dir>/<sha256>.<name>`).
 */

/** Every route of API v1 is under this prefix. */
export const API_PREFIX = '/v1';
export const ADMIN_PREFIX = `${API_PREFIX}/admin`;
export const MIRROR_PREFIX = `${API_PREFIX}/mirror`;

const productPath = (product: string) => `/products/${product}`;
const METADATA_DIR = 'tuf';
const TARGETS_DIR = 'targets';

/** The device and repository routes, relative to API_PREFIX, as fastify registers them. */
export const ROUTES = {
  auth: '/auth',
  check: '/check',
  report: '/report',
  events: '/events',
  channels: `${productPath(':product')}/channels`,
  metadata: `${productPath(':product')}/${METADATA_DIR}/:file`,
  target: `${productPath(':product')}/${TARGETS_DIR}/*`,
} as const;

/** The roles whose metadata a product's repository serves; `deltas` is the delegated role of the server's deltas. */
export const METADATA_ROLES = ['root', 'targets', 'snapshot', 'timestamp', 'deltas'] as const;
export type MetadataRoleName = (typeof METADATA_ROLES)[number];

export function checkUrl(server: string): string {
  return `${server}${API_PREFIX}${ROUTES.check}`;
}

export function reportUrl(server: string): string {
  return `${server}${API_PREFIX}${ROUTES.report}`;
}

/** The device's event stream (push): `?deviceId=&product=&channel=`, with its device token. */
export function eventsUrl(server: string, q: { deviceId: string; product: string; channel: string }): string {
  return `${server}${API_PREFIX}${ROUTES.events}?${new URLSearchParams(q).toString()}`;
}

export function channelsUrl(server: string, product: string): string {
  return `${server}${API_PREFIX}${productPath(encodeURIComponent(product))}/channels`;
}

const productUrl = (server: string, product: string) => `${server}${API_PREFIX}${productPath(encodeURIComponent(product))}`;

/** Where a product's TUF metadata lives; a TUF client appends the file names (metadataFileName). */
export function metadataBaseUrl(server: string, product: string): string {
  return `${productUrl(server, product)}/${METADATA_DIR}/`;
}

/** `N.<role>.json` for version N; `<role>.json` (only timestamp.json is served so) without one. */
export function metadataFileName(role: MetadataRoleName, version?: number): string {
  return version === undefined ? `${role}.json` : `${version}.${role}.json`;
}

const METADATA_FILE_RE = new RegExp(`^(?:(\\d{1,9})\\.)?(${METADATA_ROLES.join('|')})\\.json$`);

/** The role and version a requested metadata file name asks for; undefined when it is no such name. */
export function parseMetadataFileName(file: string): { role: MetadataRoleName; version: number | undefined } | undefined {
  const m = METADATA_FILE_RE.exec(file);
  if (!m) return undefined;
  return { role: m[2] as MetadataRoleName, version: m[1] === undefined ? undefined : Number(m[1]) };
}

/** Target `stable/1.2.0.tar.gz` with sha256 H is served as `stable/H.1.2.0.tar.gz`. */
export function targetFilePath(targetPath: string, sha256: string): string {
  const parts = targetPath.split('/');
  const name = parts.pop()!;
  return [...parts, `${sha256}.${name}`].join('/');
}

const TARGET_FILE_RE = /^(?:.*\/)?([0-9a-f]{64})\.[^/]+$/;

/** The content hash in a requested target file path (`<dir>/<sha256>.<name>`), or undefined. */
export function parseTargetFilePath(path: string): string | undefined {
  return TARGET_FILE_RE.exec(path)?.[1];
}

/** URL of a signed target's bytes: each segment of targetFilePath, encoded. */
export function targetUrl(server: string, product: string, targetPath: string, sha256: string): string {
  const segments = targetFilePath(targetPath, sha256).split('/').map(encodeURIComponent);
  return `${productUrl(server, product)}/${TARGETS_DIR}/${segments.join('/')}`;
}
