import type { ServerResponse } from 'node:http';
import { pipeline, Transform, type Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { FileRangeStream, type FileRange } from '../../artifacts/disk/file-range-stream.js';

/**
 * Sends an artifact body. A file on local disk (a FileRangeStream that can hand over its open
 * file) is written to the socket by `writeFileRange`; any other Readable goes through fastify's
 * reply.send(stream) as before.
 *
 * Why not a stream: piping an fs stream into the response allocates a fresh 64 KiB buffer per
 * read and runs the stream machinery per chunk, which cost ~5x nginx's CPU per MB (bench/download.ts).
 * Here each chunk is one positional read into a reused 1 MiB buffer and one socket write; the
 * next read starts only when the kernel took the previous chunk (the write's callback), so a slow
 * reader holds at most one buffer and backpressure is the socket's own.
 *
 * `onWritten` hears the bytes as they go out (GET /metrics): on disk, each chunk once the socket
 * took it; from another stream, each chunk as it is handed to the response.
 */
export function sendArtifact(reply: FastifyReply, body: Readable, onWritten: (bytes: number) => void = () => {}): FastifyReply {
  const file = body instanceof FileRangeStream ? body.detach() : undefined;
  if (!file) return reply.send(counted(body, onWritten));
  // Headers and status as the route set them; from here on fastify leaves the response to us.
  reply.hijack();
  const res = reply.raw;
  res.writeHead(reply.statusCode, reply.getHeaders() as Record<string, string | number | string[]>);
  writeFileRange(res, file, onWritten).catch((err: unknown) => {
    reply.log.warn({ err, url: reply.request.url }, 'artifact download failed after its headers were sent; closed the connection');
    res.destroy();
  });
  return reply;
}

/** Big buffers shared by all downloads; past `MAX_POOLED` in use, chunks are small and not pooled. */
export const CHUNK = 1024 * 1024;
export const SMALL_CHUNK = 64 * 1024;
export const MAX_POOLED = 32;

const free: Buffer[] = [];
let lent = 0;

/**
 * A buffer for one chunk: a pooled 1 MiB one while fewer than MAX_POOLED are out, else a fresh
 * 64 KiB one (the old per-download footprint), so many slow readers pin at most
 * MAX_POOLED MiB plus 64 KiB each.
 */
function take(): Buffer {
  if (lent >= MAX_POOLED) return Buffer.allocUnsafeSlow(SMALL_CHUNK);
  lent++;
  return free.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
}

function give(buf: Buffer, reusable: boolean): void {
  if (buf.length !== CHUNK) return;
  lent--;
  // A chunk whose write never confirmed may still be referenced by the socket: never reuse it.
  if (reusable) free.push(buf);
}

/** Resolves true once the kernel took `chunk`, false when the response closed first. */
function write(res: ServerResponse, chunk: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const onClose = () => resolve(false);
    res.once('close', onClose);
    res.write(chunk, (err) => {
      res.off('close', onClose);
      resolve(!err);
    });
  });
}

/** `body` passed through, each chunk's length told to `onWritten`; an error or a close on either side ends both. */
function counted(body: Readable, onWritten: (bytes: number) => void): Readable {
  const through = new Transform({
    transform(chunk: Buffer, _enc, done) {
      onWritten(chunk.length);
      done(null, chunk);
    },
  });
  pipeline(body, through, () => {});
  return through;
}

/** Writes `file.start`..`file.end` to `res` and ends it; always closes the file. `onWritten` hears each chunk the socket took. */
export async function writeFileRange(res: ServerResponse, file: FileRange, onWritten: (bytes: number) => void = () => {}): Promise<void> {
  try {
    let pos = file.start;
    while (pos <= file.end) {
      if (res.destroyed) return;
      const buf = take();
      let handed = false;
      let written = false;
      try {
        const { bytesRead } = await file.handle.read(buf, 0, Math.min(buf.length, file.end + 1 - pos), pos);
        if (bytesRead === 0) throw new Error(`artifact file ended at byte ${pos}, before the ${file.end + 1} its length promised`);
        pos += bytesRead;
        handed = true;
        written = await write(res, bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
        if (written) onWritten(bytesRead);
      } finally {
        give(buf, written || !handed);
      }
      if (!written) return;
    }
    res.end();
  } finally {
    await file.handle.close();
  }
}
