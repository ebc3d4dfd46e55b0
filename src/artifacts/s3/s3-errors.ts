/** Reading the S3 SDK's errors: by HTTP status, since S3-compatible servers differ in error names. */

export function s3Status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

/** A missing object (HeadObject answers a bare 404 `NotFound`, GetObject `NoSuchKey`). */
export function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string } | null)?.name;
  return s3Status(err) === 404 || name === 'NotFound' || name === 'NoSuchKey';
}

/** If-None-Match: * refused the write because the object exists. */
export function isPreconditionFailed(err: unknown): boolean {
  return s3Status(err) === 412 || (err as { name?: string } | null)?.name === 'PreconditionFailed';
}

/** AWS answers 409 ConditionalRequestConflict while another conditional write of the key is in flight: retry. */
export function isConditionalConflict(err: unknown): boolean {
  return s3Status(err) === 409 && (err as { name?: string } | null)?.name === 'ConditionalRequestConflict';
}

/** Thrown when the bucket or endpoint cannot be used; the message says what to do. */
export class S3StoreError extends Error {
  override name = 'S3StoreError';
}
