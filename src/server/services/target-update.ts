import type { Store } from '../../store/store.js';
import type { ArtifactStore, StagedArtifact } from '../../artifacts/artifact-store.js';
import type { VerifiedTargets } from '../../tuf/repository.js';
import { ApiError } from '../api-error.js';

/**
 * Checks that a new targets version changes only the one target this request uploads: every
 * other target must be listed exactly as before (same length and hash), so the server never
 * lists a target whose bytes it does not hold.
 */
export async function checkOnlyTargetChanged(store: Store, product: string, next: VerifiedTargets, path: string): Promise<void> {
  const current = await store.getMetadata(product, 'targets');
  const before = current ? (JSON.parse(current.json) as { signed: { targets: Record<string, { length: number; hashes: { sha256?: string } }> } }).signed.targets : {};
  for (const [p, t] of Object.entries(next.targets)) {
    if (p === path) continue;
    const old = before[p];
    if (!old || old.length !== t.length || old.hashes.sha256 !== t.sha256) {
      throw new ApiError('PW_BAD_METADATA', `the signed targets add or change '${p}' but this request uploads only '${path}'; sign the current targets plus this one target`);
    }
  }
  if (!next.targets[path]) {
    throw new ApiError('PW_BAD_METADATA', `the signed targets do not list '${path}'; sign targets that include it`);
  }
}

/** Throws PW_ARTIFACT_MISMATCH unless the staged bytes are exactly the signed target. */
export function checkStagedMatches(staged: StagedArtifact, signed: { length: number; sha256: string }, path: string): void {
  if (staged.length !== signed.length || staged.sha256 !== signed.sha256) {
    throw new ApiError(
      'PW_ARTIFACT_MISMATCH',
      `the uploaded file for '${path}' is ${staged.length} bytes with sha256 ${staged.sha256}, but the signed target says ${signed.length} bytes with sha256 ${signed.sha256}; upload the file you signed`,
    );
  }
}

/**
 * Makes the staged bytes visible, then runs the database write; when that write fails, removes
 * the bytes again if this call created them, so a refused request leaves nothing behind.
 */
export async function commitWithArtifact(artifacts: ArtifactStore, staged: StagedArtifact, write: () => Promise<void>): Promise<void> {
  const created = await staged.commit();
  try {
    await write();
  } catch (err) {
    if (created) await artifacts.delete(staged.sha256).catch(() => {});
    throw err;
  }
}

