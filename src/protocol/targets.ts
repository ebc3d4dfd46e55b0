/**
 * The targets of a product's TUF repository: their paths and the `custom.patchwire` field each
 * carries in signed targets metadata (docs/protocol.md, "Targets"). The publisher's CLI and the
 * server name targets with these; the agent checks what it is offered against them.
 */

/** The `custom` field of a release target in signed TUF targets metadata. */
export type ReleaseTargetCustom = {
  patchwire: {
    kind: 'full';
    product: string;
    channel: string;
    version: string;
    /** sha256 hex of the release tree manifest (src/util/tree-hash.ts). */
    treeHash: string;
    /** Total bytes of regular files in the tree. */
    treeBytes: number;
    treeFiles: number;
    /**
     * Issue 11: the publisher staged this release (`publish --rollout`): the phases in percent,
     * e.g. [5, 25, 100]. Signed, so a server that does not sign its answers (a mirror) may tell a
     * device "not yet for you" (status `deferred`) only about a release the publisher staged.
     */
    rollout?: { phases: number[] };
  };
};

/** The signed custom field of a delta target (signed by the server's delegated deltas role). */
export type DeltaCustom = {
  patchwire: {
    kind: 'delta'; product: string; channel: string; from: string; to: string; engine: string;
    /** Length of the tree stream the delta produces (bounds what the agent writes). */
    newStreamLength: number;
  };
};

export type MovedTargetCustom = {
  patchwire: { kind: 'moved'; product: string; url: string };
};

/** Path of a release's full archive in the product's TUF repository. */
export function releaseTargetPath(channel: string, version: string): string {
  return `${channel}/${version}.tar.gz`;
}

const DELTAS_DIR = 'deltas';

/** Path of the delta that turns release `from` into `to`; a semver version has no `_`. */
export function deltaTargetPath(channel: string, from: string, to: string): string {
  return `${DELTAS_DIR}/${channel}/${from}_${to}.pwdelta`;
}

/** True for a path under the deltas role's folder (the only paths it may sign). */
export function isDeltaTargetPath(path: string): boolean {
  return path.startsWith(`${DELTAS_DIR}/`);
}

/** The paths targets v1 delegates to the deltas role: deltaTargetPath's shape (a TUF `*` does not cross a `/`). */
export const DELTAS_PATH_PATTERN = `${DELTAS_DIR}/*/*`;

/** Path of the moved notice in the product's TUF repository. */
export const MOVED_TARGET_PATH = 'moved.json';
