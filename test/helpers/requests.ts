/**
 * Builders for hand-made server requests (no CLI in between): raw tar.gz archives, signed targets
 * metadata, multipart bodies, and the shape check of an error answer. Used by the bad-input tests,
 * which need to send what a well-behaved client never would.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { gzipSync } from 'node:zlib';
import { Metadata, MetadataKind, type Targets } from '@tufjs/models';
import { encodeHeader, padding, BLOCK } from '../../src/util/tar-format.js';
import { nextTargets, type SignedJson, type NewTarget } from '../../src/tuf/publisher.js';
import { signerFor, type KeyPair } from '../../src/tuf/keys.js';

export interface RawEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink';
  content?: string;
  linkname?: string;
  mode?: number;
}

/** A gzip-compressed ustar archive with exactly these entries, names written as given (no checks). */
export function rawTarGz(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.content ?? '', 'utf8');
    const size = e.type === 'file' ? body.length : 0;
    blocks.push(encodeHeader({
      name: e.name,
      mode: e.mode ?? (e.type === 'file' ? 0o644 : e.type === 'dir' ? 0o755 : 0o777),
      size,
      typeflag: e.type === 'file' ? '0' : e.type === 'dir' ? '5' : '2',
      linkname: e.linkname ?? '',
    }));
    if (size > 0) {
      blocks.push(body, Buffer.alloc(padding(size)));
    }
  }
  blocks.push(Buffer.alloc(BLOCK * 2));
  return gzipSync(Buffer.concat(blocks), { level: 9 });
}

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A release target entry for `bytes` with a patchwire custom field (override any field). */
export function releaseTarget(
  bytes: Buffer,
  custom: { product: string; channel: string; version: string; treeBytes: number; treeFiles: number; treeHash?: string; [k: string]: unknown },
): NewTarget {
  return {
    length: bytes.length,
    sha256: sha256(bytes),
    custom: { patchwire: { kind: 'full', treeHash: 'a'.repeat(64), ...custom } },
  };
}

/** The next targets version signed by `publisher`, optionally re-signed by `signWith` instead. */
export function signNext(current: SignedJson, publisher: KeyPair, add: Record<string, NewTarget>, signWith?: KeyPair): SignedJson {
  const next = nextTargets({ current, publisher, add, now: new Date() });
  if (!signWith) return next;
  const md = Metadata.fromJSON(MetadataKind.Targets, next as never) as Metadata<Targets>;
  md.sign(signerFor(signWith), false);
  return md.toJSON();
}

/** Serialises a FormData as fetch would send it: returns the body bytes and the content-type. */
export async function multipartBody(parts: Array<[string, string | Buffer, string?]>): Promise<{ body: Buffer; contentType: string }> {
  const form = new FormData();
  for (const [name, value, filename] of parts) {
    if (typeof value === 'string' && filename === undefined) form.append(name, value);
    else form.append(name, new Blob([typeof value === 'string' ? value : new Uint8Array(value)]), filename ?? 'release.tar.gz');
  }
  const res = new Response(form);
  return { body: Buffer.from(await res.arrayBuffer()), contentType: res.headers.get('content-type')! };
}

export interface ErrorAnswer {
  statusCode: number;
  code: string;
  error: string;
  message: string;
}

/**
 * Asserts an error answer: the status, exactly the four documented fields, the code, and a message
 * matching `message` (what was wrong and what to do).
 */
export function assertError(status: number, bodyText: string, expect: { status: number; code: string; message?: RegExp }): ErrorAnswer {
  let body: ErrorAnswer;
  try {
    body = JSON.parse(bodyText) as ErrorAnswer;
  } catch {
    assert.fail(`expected a JSON error body with status ${expect.status}, got ${status}: ${bodyText.slice(0, 300)}`);
  }
  assert.equal(status, expect.status, `status (body: ${bodyText.slice(0, 400)})`);
  assert.deepEqual(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], bodyText);
  assert.equal(body.statusCode, expect.status);
  assert.equal(body.code, expect.code, `code (message: ${body.message})`);
  assert.equal(body.error, STATUS_CODES[expect.status]);
  assert.equal(typeof body.message, 'string');
  assert.ok(body.message.length >= 15, `message too short to say what to do: ${body.message}`);
  if (expect.message) assert.match(body.message, expect.message);
  return body;
}
