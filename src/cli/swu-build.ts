import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CliError } from './cli-error.js';
import { cpioEntry, cpioTrailer } from '../util/cpio-newc.js';

/** What `publish --swu-*` asks for (issue 12, hawkBit / SWUpdate). */
export interface SwuOptions {
  cert: string;
  key: string;
  /** The folder SWUpdate's archive handler extracts the release tree into. */
  dest: string;
  /** `board:revision` from `--swu-hw`, or undefined: no hardware-compatibility line. */
  hw?: { board: string; revision: string };
}

export interface SwuBuilt {
  file: string;
  sha256: string;
  length: number;
}

/** The name of the payload inside the .swu: the release archive, as published. */
export const SWU_PAYLOAD = 'release.tar.gz';
const HW = /^([A-Za-z0-9._-]{1,64}):([A-Za-z0-9._-]{1,64})$/;
/** A libconfig string we write without escapes: printable ASCII without `"` and `\`. */
const PLAIN = /^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,512}$/;

/** Checks the `--swu-*` flags (exit 2 with what to fix); undefined when none is given. */
export function swuOptions(o: { swuCert?: string; swuKey?: string; swuDest?: string; swuHw?: string }): SwuOptions | undefined {
  if (o.swuCert === undefined && o.swuKey === undefined) {
    const stray = [o.swuDest !== undefined && '--swu-dest', o.swuHw !== undefined && '--swu-hw'].filter(Boolean);
    if (stray.length) throw new CliError(`${stray.join(', ')} only apply with --swu-cert CERT.pem --swu-key KEY.pem (the .swu for hawkBit devices)`);
    return undefined;
  }
  if (o.swuCert === undefined || o.swuKey === undefined) throw new CliError('a .swu is signed with both --swu-cert CERT.pem and --swu-key KEY.pem: give the two');
  const dest = o.swuDest ?? '/opt/patchwire';
  if (!dest.startsWith('/') || !PLAIN.test(dest) || dest.split('/').includes('..')) {
    throw new CliError(`--swu-dest '${dest}' is not an absolute folder path without '..', quotes or backslashes, e.g. /opt/acme`);
  }
  let hw: SwuOptions['hw'];
  if (o.swuHw !== undefined) {
    const m = HW.exec(o.swuHw);
    if (!m) throw new CliError(`--swu-hw '${o.swuHw}' is not board:revision such as board:1.0 (letters, digits, . _ -)`);
    hw = { board: m[1]!, revision: m[2]! };
  }
  return { cert: o.swuCert, key: o.swuKey, dest, ...(hw ? { hw } : {}) };
}

/** SWUpdate's sw-description (libconfig): one `archive` file, the release tree, into `dest`. */
export function swDescription(p: { product: string; channel: string; version: string; sha256: string; dest: string; hw?: SwuOptions['hw'] }): string {
  return [
    'software =',
    '{',
    `\tversion = "${p.version}";`,
    `\tdescription = "patchwire ${p.product} ${p.version} (${p.channel})";`,
    ...(p.hw ? [`\thardware-compatibility: [ "${p.hw.revision}" ];`] : []),
    '\tfiles: (',
    '\t\t{',
    `\t\t\tfilename = "${SWU_PAYLOAD}";`,
    '\t\t\ttype = "archive";',
    `\t\t\tpath = "${p.dest}";`,
    `\t\t\tsha256 = "${p.sha256}";`,
    '\t\t\tproperties: { create-destination = "true"; };',
    '\t\t}',
    '\t);',
    '};',
    '',
  ].join('\n');
}

/**
 * Signs sw-description as SWUpdate's CMS mode verifies it, with the `openssl cms` binary: SWUpdate
 * itself verifies with OpenSSL's CMS code, so the same implementation signs (no new dependency;
 * Node has no CMS). `-noattr` leaves out the signed attributes (signing time), so with an RSA key
 * the signature, and so the whole .swu, is the same bytes for the same inputs.
 */
async function cmsSign(input: string, cert: string, key: string, out: string): Promise<void> {
  const args = ['cms', '-sign', '-in', input, '-signer', cert, '-inkey', key, '-outform', 'DER', '-nosmimecap', '-binary', '-noattr', '-out', out];
  await new Promise<void>((resolve, reject) => {
    execFile('openssl', args, { timeout: 60_000, maxBuffer: 1024 * 1024 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      reject(new CliError(missing
        ? 'signing the .swu needs the `openssl` command (apt-get install openssl); it is not on PATH'
        : `openssl could not sign sw-description with --swu-cert ${cert} --swu-key ${key}: ${String(stderr).trim().split('\n')[0] ?? err.message}; give a PEM certificate and its PEM private key`, 2, { cause: err }));
    });
  });
}

/**
 * Builds the .swu of a release on the publisher's machine (the vendor's key never leaves it): a
 * cpio newc archive of sw-description, sw-description.sig (CMS, DER) and the release archive.
 */
export async function buildSwu(p: { product: string; channel: string; version: string; archive: string; archiveSha256: string; tmp: string; swu: SwuOptions }): Promise<SwuBuilt> {
  for (const [flag, f] of [['--swu-cert', p.swu.cert], ['--swu-key', p.swu.key]] as const) {
    if (!(await stat(f).catch(() => undefined))?.isFile()) throw new CliError(`${flag} ${f} is not a file; give a PEM file`);
  }
  const descFile = join(p.tmp, 'sw-description');
  const sigFile = join(p.tmp, 'sw-description.sig');
  const desc = Buffer.from(swDescription({ product: p.product, channel: p.channel, version: p.version, sha256: p.archiveSha256, dest: p.swu.dest, ...(p.swu.hw ? { hw: p.swu.hw } : {}) }), 'utf8');
  await writeFile(descFile, desc);
  await cmsSign(descFile, p.swu.cert, p.swu.key, sigFile);
  const sig = await readFile(sigFile);
  const payloadLength = (await stat(p.archive)).size;
  const file = join(p.tmp, 'release.swu');
  const hash = createHash('sha256');
  let length = 0;
  async function* parts(): AsyncGenerator<Buffer> {
    let ino = 1;
    for (const [name, body] of [['sw-description', desc], ['sw-description.sig', sig]] as const) {
      const e = cpioEntry(name, body.length, ino++);
      yield e.head; yield body; yield e.tail;
    }
    const e = cpioEntry(SWU_PAYLOAD, payloadLength, ino);
    yield e.head;
    for await (const chunk of createReadStream(p.archive)) yield chunk as Buffer;
    yield e.tail;
    yield cpioTrailer();
  }
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const b of parts()) {
      hash.update(b);
      length += b.length;
      yield b;
    }
  }
  await pipeline(counted, createWriteStream(file));
  return { file, sha256: hash.digest('hex'), length };
}
