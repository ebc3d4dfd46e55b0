import { CliError } from './cli-error.js';
import type { KeyPair } from '../tuf/keys.js';

/** Reads a publisher key file; a missing or bad one is bad input (exit 2). */
export async function loadPublisherKey(path: string): Promise<KeyPair> {
  const { readKeyFile, KeyFileError } = await import('../tuf/keys.js');
  try {
    return await readKeyFile(path);
  } catch (err) {
    if (err instanceof KeyFileError) throw new CliError(err.message, 2, { cause: err });
    throw err;
  }
}
