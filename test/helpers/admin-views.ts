import type { ReportEvent } from '../../src/protocol/wire.js';
import type { SignedJson } from '../../src/tuf/publisher.js';

/** GET /v1/admin/products/:product: the server exports no type for this answer yet. */
export interface ProductInfo {
  product: string;
  targets: SignedJson & { signed: { version: number; targets: Record<string, unknown> } };
  releases: Array<{ channel: string; version: string; target: string; sha256: string; length: number; createdAt: string }>;
  moved: string | null;
}

/** One row of GET /v1/admin/products/:product/devices/:deviceId/reports (no exported type either). */
export interface ReportRow {
  event: ReportEvent;
  version: string | null;
  previousVersion: string | null;
  detail: string | null;
  at: string;
}
