const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Refuses anything but a lower-case sha256 hex digest, so a caller's string can never name another path or key. */
export function checkSha256(sha256: string): void {
  if (!SHA256_HEX.test(sha256)) throw new Error(`not a lower-case sha256 hex digest: ${JSON.stringify(sha256)}`);
}
