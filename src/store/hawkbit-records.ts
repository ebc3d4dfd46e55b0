/**
 * What the hawkBit DDI surface keeps (issue 12, migration 0014_hawkbit), apart from the device
 * registry it shares with native agents: a release's .swu and its action id, each DDI target's
 * token hash and state, each product's gateway token hash. One implementation serves both
 * databases (sqlite/hawkbit-queries.ts); `Store.hawkbit` holds it.
 */
export interface SwuRecord {
  /** The hawkBit action id of this release: assigned once by the database, below 2^31. */
  actionId: number;
  product: string;
  channel: string;
  version: string;
  /** sha256 hex of the .swu, its artifact address. */
  sha256: string;
  /** sha1 hex of the .swu: SWUpdate checks the download against the deployment's `hashes.sha1`. */
  sha1: string;
  length: number;
  createdAt: Date;
}

/** A DDI target (controller) of a product: its token, and what its feedback told. */
export interface HawkbitTargetRecord {
  product: string;
  deviceId: string;
  /** sha256 hex of its TargetToken, or null (a device that speaks with the gateway token). */
  tokenHash: string | null;
  /** The channel it is offered releases of (`devices token --channel`, default stable). */
  channel: string;
  /** When its configData arrived (the base poll then drops the configData link), or null. */
  configAt: Date | null;
  /** The attributes of its configData (bounded), or null. */
  attributes: Record<string, string> | null;
  /** The action it closed with a failure: not offered again (as a native agent holds back a failed version). */
  failedAction: number | null;
  updatedAt: Date;
}

export interface HawkbitRecords {
  /** Stores a release's .swu (the first one stays) and answers the stored record with its action id. */
  putSwu(r: Omit<SwuRecord, 'actionId'>): Promise<SwuRecord>;
  getSwu(product: string, channel: string, version: string): Promise<SwuRecord | undefined>;
  getSwuByAction(product: string, actionId: number): Promise<SwuRecord | undefined>;
  listSwu(product: string): Promise<SwuRecord[]>;
  getTarget(product: string, deviceId: string): Promise<HawkbitTargetRecord | undefined>;
  putTarget(r: HawkbitTargetRecord): Promise<void>;
  getGatewayTokenHash(product: string): Promise<string | undefined>;
  /** Replaces the product's gateway token hash. */
  putGatewayTokenHash(product: string, tokenHash: string, at: Date): Promise<void>;
}
