import type { ReleaseTargetCustom } from './targets.js';

/** The release a signed custom field must name. */
export interface ReleaseName {
  product: string;
  channel: string;
  version: string;
}

export type ParsedReleaseCustom =
  | { ok: true; patchwire: ReleaseTargetCustom['patchwire'] }
  | { ok: false; problem: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * Checks the signed `custom.patchwire` field of a release target, once for both sides: the server
 * at publish, the agent before it installs. The field must name exactly `expect` with kind `full`
 * and carry a tree hash (64 hex digits), tree size and file count (whole numbers >= 0). A
 * problem is phrased about the target, as the agent shows it ("its treeHash is malformed"); the
 * server answers with its own message naming the expected field.
 */
export function parseReleaseCustom(custom: unknown, expect: ReleaseName): ParsedReleaseCustom {
  const c = isObject(custom) && isObject(custom.patchwire) ? custom.patchwire : undefined;
  const problem =
    !c ? 'it has no patchwire custom field'
    : c.kind !== 'full' ? `its kind is ${String(c.kind)}, this agent applies "full" releases`
    : c.product !== expect.product || c.channel !== expect.channel ? `it is signed for ${String(c.product)}/${String(c.channel)}, not ${expect.product}/${expect.channel}`
    : c.version !== expect.version ? `it is signed as version ${String(c.version)}, not ${expect.version}`
    : typeof c.treeHash !== 'string' || !/^[0-9a-f]{64}$/.test(c.treeHash) ? 'its treeHash is malformed'
    : !isCount(c.treeBytes) ? 'its treeBytes is malformed'
    : !isCount(c.treeFiles) ? 'its treeFiles is malformed'
    : undefined;
  if (problem) return { ok: false, problem };
  return { ok: true, patchwire: c as ReleaseTargetCustom['patchwire'] };
}
