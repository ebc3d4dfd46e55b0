/**
 * What signing check answers costs (issue 9): the server signs every answer that carries a nonce
 * with the product's timestamp key; the agent verifies it.
 *
 *   node --import tsx bench/check-answer.ts [--requests N]
 *
 * (a) in-process, N=20000 after 2000 warm-up: the server's sign call (canonical JSON + Ed25519)
 *     and the agent's verify (canonical JSON + Ed25519 verify), per operation;
 * (b) a real `patchwire serve` on CPU 0 with acme 1.0.0; this script sends N up-to-date checks
 *     (8 at a time, keep-alive) without a nonce (no signed block) and N with one, in alternating
 *     rounds (A B A B), and reads the server's CPU time (utime+stime, /proc/PID/stat) per request.
 */
import { readFile } from 'node:fs/promises';
import { createPublicKey, verify } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { canonicalize } from '@tufjs/canonical-json';
import { generateKeyPair } from '../src/tuf/keys.js';
import { jsonSigner } from '../src/tuf/sign-json.js';
import { CHECK_ANSWER_TYPE, type SignedCheckAnswer } from '../src/protocol/index.js';
import { makeTempDir, publishAcme, runMain, startPatchwire, table } from './lib.js';

const argv = process.argv.slice(2);
const reqArg = argv.indexOf('--requests');
const N_REQ = reqArg >= 0 ? Number(argv[reqArg + 1]) : 4000;
const N_OPS = 20_000;

function block(): SignedCheckAnswer {
  const now = new Date();
  return {
    _type: CHECK_ANSWER_TYPE, deviceId: 'aa:bb:cc:00:00:01', product: 'acme', channel: 'stable', nonce: randomBytes(16).toString('hex'),
    status: 'up-to-date', latest: '1.0.0', release: null, serverTime: now.toISOString(), expires: new Date(now.getTime() + 300_000).toISOString(),
    timestamp: { version: 12, expires: now.toISOString() },
  };
}

function perOp(fn: () => void): number {
  for (let i = 0; i < 2000; i++) fn();
  const t0 = performance.now();
  for (let i = 0; i < N_OPS; i++) fn();
  return ((performance.now() - t0) / N_OPS) * 1000;
}

async function cpuMs(pid: number): Promise<number> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, clock ticks of 10 ms
}

async function round(url: string, nonce: boolean, n: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const body = { deviceId: `aa:bb:cc:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`, product: 'acme', channel: 'stable', version: '1.0.0', ...(nonce ? { nonce: randomBytes(16).toString('hex') } : {}) };
      const res = await fetch(`${url}/v1/check`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const a = (await res.json()) as { status: string; signed?: unknown };
      if (a.status !== 'up-to-date' || (a.signed !== undefined) !== nonce) throw new Error(`unexpected answer ${JSON.stringify(a)}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

runMain(async () => {
  const key = generateKeyPair();
  const sign = jsonSigner(key);
  const b = block();
  const sig = Buffer.from(sign(b).sig, 'hex');
  const pub = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(key.publicHex, 'hex')]), format: 'der', type: 'spki' });
  const signUs = perOp(() => sign(b));
  const verifyUs = perOp(() => { verify(null, Buffer.from(canonicalize(b)), pub, sig); });

  const dir = await makeTempDir('patchwire-bench-answer-');
  const server = await startPatchwire(`${dir}/data`, { cpu: 0 });
  await publishAcme(dir, server.url);
  const pid = server.child.pid!;
  const totals = { plain: { cpu: 0, n: 0 }, signed: { cpu: 0, n: 0 } };
  await round(server.url, false, 500); // warm-up
  await round(server.url, true, 500);
  for (let r = 0; r < 4; r++) {
    const nonce = r % 2 === 1;
    const c0 = await cpuMs(pid);
    await round(server.url, nonce, N_REQ / 2);
    const t = totals[nonce ? 'signed' : 'plain'];
    t.cpu += (await cpuMs(pid)) - c0;
    t.n += N_REQ / 2;
  }
  const us = (t: { cpu: number; n: number }) => (t.cpu / t.n) * 1000;
  process.stdout.write(`patchwire check-answer bench: node ${process.version}, server on CPU 0, ${N_REQ} checks each way\n\n`);
  process.stdout.write(table(['measurement', 'N', 'per op'], [
    ['(a) server: sign one answer (canonical JSON + Ed25519), in-process', String(N_OPS), `${signUs.toFixed(1)} us`],
    ['    agent: verify one answer (canonical JSON + Ed25519 verify), in-process', String(N_OPS), `${verifyUs.toFixed(1)} us`],
    ['(b) server CPU per up-to-date check, no nonce (unsigned)', String(totals.plain.n), `${us(totals.plain).toFixed(1)} us`],
    ['    server CPU per up-to-date check, with nonce (signed)', String(totals.signed.n), `${us(totals.signed).toFixed(1)} us`],
    ['    difference (what signing adds per check)', '-', `${(us(totals.signed) - us(totals.plain)).toFixed(1)} us (${(((us(totals.signed) / us(totals.plain)) - 1) * 100).toFixed(0)}%)`],
  ]) + '\n');
});
