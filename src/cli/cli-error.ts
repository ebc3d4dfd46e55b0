/**
 * An error the CLI prints as `patchwire: <message>` and exits with `exitCode`:
 * 2 for bad usage or bad input (flags, files, refused requests), 1 for any other failure.
 */
export class CliError extends Error {
  override name = 'CliError';
  constructor(message: string, readonly exitCode: 1 | 2 = 2, options?: { cause?: unknown }) {
    super(message, options);
  }
}
