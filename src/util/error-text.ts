/**
 * The message of a thrown value, for logs, reports and the update record. With `cause`, the
 * cause's message follows: fetch says only "fetch failed" and puts the useful part
 * (ECONNREFUSED ...) in its cause.
 */
export function errorText(err: unknown, opts: { cause?: boolean } = {}): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  return opts.cause && cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
}
