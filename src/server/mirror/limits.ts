/**
 * Bounds of one consolidation run against one mirror (issue 9): a hostile or broken mirror costs
 * the primary at most PAGE_MAX_BYTES of memory per page and MAX_PAGES_PER_RUN requests per run.
 */
export interface PullLimits {
  /** Records asked for per page (`limit=`); a page with more is refused. */
  pageRecords: number;
  /** Bytes of one page read into memory (streamed with this limit; more is an error). */
  pageMaxBytes: number;
  /** Pages per run; past it the run stops with an error and the next one resumes from the cursor. */
  maxPages: number;
}

export const PULL_LIMITS: PullLimits = { pageRecords: 5000, pageMaxBytes: 8 * 1024 ** 2, maxPages: 1000 };

/** A mirror's cursor is kept and sent back; the mirror API refuses longer ones too. */
export const MAX_CURSOR_LENGTH = 512;

/**
 * Bounds of the deltas a mirror copies from its primary (issue 13): a hostile or broken primary
 * costs a mirror at most DELTA_DOWNLOADS_PER_PASS downloads per replication pass (the rest follow
 * in the next passes), each at most the signed length of the full archive it replaces.
 */
export const DELTA_LIMITS = {
  /** Catalog entries read per product; beyond, only the newest this many are considered. */
  perProduct: 10_000,
  /** Delta downloads per replication pass, over all products. */
  downloadsPerPass: 32,
};
