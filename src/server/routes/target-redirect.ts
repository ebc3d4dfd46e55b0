import type { FastifyReply } from 'fastify';
import type { ArtifactStore } from '../../artifacts/artifact-store.js';
import { ServerConfigError } from '../config-error.js';

/** Lifetime of a presigned download URL: long enough to start a download, short enough that a leaked one soon stops working. */
export const REDIRECT_EXPIRY_SECONDS = 300;

/** The URL a download is redirected to: a presigned GET of exactly that artifact. */
export type TargetRedirect = (sha256: string) => Promise<string>;

/**
 * `serve --store-redirect`: downloads answer 302 to the artifact store's presigned URL instead of
 * streaming through this process. Refused (ServerConfigError) for a store that has no such URLs.
 */
export function targetRedirect(artifacts: ArtifactStore): TargetRedirect {
  const downloadUrl = artifacts.downloadUrl?.bind(artifacts);
  if (!downloadUrl) throw new ServerConfigError('--store-redirect needs an object store that can presign downloads: add --store s3://BUCKET?...; with artifacts on disk the server streams them itself (leave --store-redirect out)');
  return (sha256) => downloadUrl(sha256, { expiresInSeconds: REDIRECT_EXPIRY_SECONDS });
}

/**
 * Answers 302 to `url`. Not cacheable (the URL expires), and without the artifact's ETag and
 * Accept-Ranges: those describe the bytes, which the client now gets from the store, Range and all.
 */
export function sendRedirect(reply: FastifyReply, url: string): FastifyReply {
  reply.removeHeader('etag');
  reply.removeHeader('accept-ranges');
  reply.removeHeader('content-type');
  return reply.code(302).header('cache-control', 'no-store').header('location', url).send();
}
