import type { IncomingHttpHeaders, Server } from 'node:http';
import S3rver from 's3rver';
import { freePort } from './ports.js';
import { tempDir } from './temp-dir.js';
import type { Owner } from './cleanup.js';

/** s3rver's fixed credentials: it accepts only these. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface RunningS3 {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** Buckets created on start. */
  buckets: string[];
  /** Environment variables an S3 client (or `patchwire serve`) reads its credentials from. */
  env: Record<string, string>;
  /** Every request s3rver received (method, path with query, headers), in order. */
  seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders }>;
  stop(): Promise<void>;
}

/**
 * A real s3rver on 127.0.0.1 (a free port) keeping its objects in a temp folder, with the named
 * buckets created; stopped (and its folder removed) when `owner` cleans up, or by stop().
 */
export async function startS3rver(owner: Owner, buckets: string[] = ['patchwire']): Promise<RunningS3> {
  const directory = await tempDir(owner, 'patchwire-s3rver-');
  const port = await freePort();
  const server = new S3rver({ address: '127.0.0.1', port, directory, silent: true, configureBuckets: buckets.map((name) => ({ name })) });
  await server.run();
  const seen: RunningS3['seen'] = [];
  // A second listener beside s3rver's own: it sees each request as it arrives, changing nothing.
  (server as unknown as { httpServer: Server }).httpServer.on('request', (req) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await server.close();
  };
  owner.after(stop);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    buckets,
    env: { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1' },
    seen,
    stop,
  };
}
