/**
 * What an unauthenticated Mender auth request costs the server's event loop (attack12), by the
 * RSA key it carries: a real device's (3072 bits, e=65537, signed), the largest modulus accepted
 * (8192 bits, e=65537, a random signature) and a 3072-bit modulus with a 3,071-bit public
 * exponent (a random signature: the attacker needs no private key, the verify's cost is the same; a
 * leading zero byte keeps it below the modulus, else OpenSSL refuses it before exponentiating).
 *
 *   node --import tsx bench/mender-auth.ts [--base-cli /tmp/base/bin/patchwire.js] [--requests 300]
 *
 * One `patchwire serve` per build (this tree, and `--base-cli`'s if given) on CPU 0; this process
 * on CPU 1 sends `--requests` auth requests of each kind, 4 in flight, to each server in turn.
 * Reported: the server's main-thread CPU time per request (the event loop: what every other
 * device waits behind), wall time per request, and the answers' status codes.
 */
import { constants, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { CLI, loadAverage, mainThreadCpuSeconds, makeTempDir, runMain, startPatchwire, stopChild, table } from './lib.js';

const argv = process.argv.slice(2);
const arg = (name: string): string | undefined => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const REQUESTS = Number(arg('--requests') ?? '300');
const BASE = arg('--base-cli');

function body(mac: string, pub: KeyObject): Buffer {
  return Buffer.from(JSON.stringify({ id_data: JSON.stringify({ mac }), tenant_token: '', pubkey: pub.export({ type: 'spki', format: 'pem' }) }));
}

function kinds(): Array<{ name: string; body: Buffer; sig: string }> {
  const device = generateKeyPairSync('rsa', { modulusLength: 3072 });
  const big = generateKeyPairSync('rsa', { modulusLength: 8192 });
  const d = body('02:00:00:00:be:01', device.publicKey);
  const n = (device.publicKey.export({ format: 'jwk' }) as { n: string }).n;
  const e = Buffer.from(n, 'base64url');
  e[0] = e[0]! >> 1;
  e[e.length - 1] = e[e.length - 1]! | 1;
  const heavy = createPublicKey({ key: { kty: 'RSA', n, e: e.toString('base64url') }, format: 'jwk' });
  return [
    { name: 'device key, 3072 bits, e=65537, signed', body: d, sig: sign('sha256', d, { key: device.privateKey, padding: constants.RSA_PKCS1_PADDING }).toString('base64') },
    { name: '8192 bits, e=65537, random signature', body: body('02:00:00:00:be:02', big.publicKey), sig: randomSignature(1024) },
    { name: '3072 bits, 3071-bit e, random signature', body: body('02:00:00:00:be:03', heavy), sig: randomSignature(384) },
  ];
}

/** A random signature below any modulus of its length (a leading zero byte), so OpenSSL does the whole modular exponentiation before it refuses it. */
function randomSignature(bytes: number): string {
  const s = randomBytes(bytes);
  s[0] = 0;
  return s.toString('base64');
}

async function send(url: string, k: { body: Buffer; sig: string }, n: number): Promise<Map<number, number>> {
  const codes = new Map<number, number>();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const res = await fetch(`${url}/api/devices/v1/authentication/auth_requests`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-men-signature': k.sig }, body: new Uint8Array(k.body) });
      await res.arrayBuffer();
      codes.set(res.status, (codes.get(res.status) ?? 0) + 1);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return codes;
}

runMain(async () => {
  console.log(`load average at start: ${loadAverage()}`);
  const builds = [{ name: 'this tree', cli: CLI }, ...(BASE ? [{ name: 'base', cli: BASE }] : [])];
  const ks = kinds();
  const rows: string[][] = [];
  for (const b of builds) {
    const dir = await makeTempDir('pw-bench-mender-auth-');
    const server = await startPatchwire(join(dir, 'data'), { cpu: 0, cli: b.cli });
    try {
      for (const k of ks) {
        await send(server.url, k, 20); // warm-up
        const c0 = await mainThreadCpuSeconds(server.child.pid!);
        const t0 = performance.now();
        const codes = await send(server.url, k, REQUESTS);
        const wall = performance.now() - t0;
        const cpu = (await mainThreadCpuSeconds(server.child.pid!)) - c0;
        rows.push([b.name, k.name, (cpu * 1000 / REQUESTS).toFixed(3), (wall / REQUESTS).toFixed(3), [...codes].map(([c, n]) => `${n}x${c}`).join(' ')]);
      }
    } finally {
      await stopChild(server.child);
    }
  }
  console.log(table(['build', 'auth request', 'server main-thread CPU ms/req', 'wall ms/req (4 in flight)', 'answers'], rows));
  console.log(`load average at end: ${loadAverage()}`);
});
