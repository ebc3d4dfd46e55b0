/**
 * An error the CLI prints as `patchwire: <message>` and exits with `exitCode`:
 * 2 for bad usage or bad input (flags, files, refused requests), 3 for a device that waits for an
 * operator's approval (PW_DEVICE_PENDING), 1 for any other failure.
 * `code` is what `--json` prints as `error.code` (docs/errors.md, "Command line"): the server's
 * code when the server refused the request, else PW_BAD_INPUT (exit 2) or PW_FAILED (exit 1).
 * `resultPrinted`: the command already printed its JSON result (a check that rolled back), so
 * `--json` adds no error document: stdout stays one JSON document.
 */
export class CliError extends Error {
  override name = 'CliError';
  readonly code: string;
  readonly resultPrinted: boolean;
  constructor(message: string, readonly exitCode: 1 | 2 | 3 = 2, options?: { cause?: unknown; code?: string; resultPrinted?: boolean }) {
    super(message, options);
    this.code = options?.code ?? (exitCode === 2 ? 'PW_BAD_INPUT' : exitCode === 3 ? 'PW_DEVICE_PENDING' : 'PW_FAILED');
    this.resultPrinted = options?.resultPrinted ?? false;
  }
}
