/**
 * Downloading one release archive from an S3 store: straight from the S3 server (a presigned GET,
 * the ceiling), through `patchwire serve --store s3://...` (streaming) and through a server with
 * `--store-redirect` (302, then the same presigned GET), with curl, alternating in one run.
 *
 *   node --import tsx bench/s3-download.ts [--mib 64] [--rounds 5]
 *
 * The S3 server is s3rver (npm, in this process) on 127.0.0.1 with its objects in a temp folder:
 * its own speed caps every row, so the ratios say what the server's path costs, not what AWS gives.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import S3rver from 's3rver';
import { CLI, TOKEN, cleanup, cli, makeTempDir, percentile, run, runMain, startChild, table, waitForOutput } from './lib.js';
import { freePort } from '../test/helpers/ports.js';
import { targetUrl } from '../src/protocol/urls.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : dflt);
const MIB = arg('--mib', 64);
const ROUNDS = arg('--rounds', 5);
const PARALLEL = 4;

async function serve(dir: string, store: string, extra: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const child = startChild(process.execPath, [CLI, 'serve', '--data', dir, '--host', '127.0.0.1', '--port', '0', '--log-level', 'warn', '--store', store, ...extra], { PATCHWIRE_TOKEN: TOKEN, ...env });
  return (await waitForOutput(child, /patchwire: listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
}

/** Seconds for `n` curls of `url` in parallel (following redirects), each checked for the full length. */
async function curl(url: string, n: number, bytes: number): Promise<number> {
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: n }, () => run('curl', ['-sS', '-L', '-o', '/dev/null', '-w', '%{size_download}', url])));
  const s = (performance.now() - t0) / 1000;
  for (const r of results) if (r.code !== 0 || Number(r.stdout) !== bytes) throw new Error(`curl ${url}: exit ${r.code}, ${r.stdout} bytes: ${r.stderr}`);
  return s;
}

runMain(async () => {
  const root = await makeTempDir('patchwire-bench-s3-');
  const port = await freePort();
  const s3 = new S3rver({ address: '127.0.0.1', port, directory: join(root, 's3rver'), silent: true, configureBuckets: [{ name: 'bench' }] });
  await s3.run();
  try {
    const endpoint = `http://127.0.0.1:${port}`;
    const env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
    const spec = (prefix: string) => `s3://bench/${prefix}?endpoint=${endpoint}&region=us-east-1`;
    const streaming = await serve(join(root, 'a'), spec('a'), [], env);
    const redirect = await serve(join(root, 'b'), spec('b'), ['--store-redirect'], env);

    const tree = join(root, 'tree');
    await mkdir(tree, { recursive: true });
    await writeFile(join(tree, 'payload.bin'), randomBytes(MIB * 1024 * 1024)); // incompressible: the archive is ~MIB
    const key = join(root, 'publisher.key');
    await cli(['keygen', '--out', key]);
    for (const [i, url] of [streaming, redirect].entries()) {
      await cli(['product', 'create', '--server', url, '--token', TOKEN, '--product', 'acme', '--key', key, '--root-out', join(root, `root-${i}.json`)]);
      await cli(['publish', '--server', url, '--token', TOKEN, '--product', 'acme', '--version', '1.0.0', '--key', key, tree]);
    }
    const listing = JSON.parse((await cli(['releases', '--server', streaming, '--token', TOKEN, '--product', 'acme', '--json'])).stdout) as { releases: Array<{ target: string; sha256: string; length: number }> };
    const { target, sha256, length } = listing.releases[0]!;
    const path = (base: string) => targetUrl(base, 'acme', target, sha256);
    const presigned = (await fetch(path(redirect), { redirect: 'manual' })).headers.get('location')!;

    const paths: Array<[string, string]> = [['s3rver direct (presigned GET)', presigned], ['patchwire streaming', path(streaming)], ['patchwire --store-redirect', path(redirect)]];
    const times = new Map<string, { one: number[]; many: number[] }>(paths.map(([name]) => [name, { one: [], many: [] }]));
    for (const [, url] of paths) await curl(url, 1, length); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, url] of paths) {
        times.get(name)!.one.push(await curl(url, 1, length));
        times.get(name)!.many.push(await curl(url, PARALLEL, length));
      }
    }
    const mbps = (s: number, n: number) => (n * length) / 1024 ** 2 / s;
    const direct = times.get(paths[0]![0])!;
    const rows = paths.map(([name]) => {
      const t = times.get(name)!;
      const one = mbps(percentile(t.one, 50), 1);
      const many = mbps(percentile(t.many, 50), PARALLEL);
      return [name, `${one.toFixed(0)} MiB/s`, (one / mbps(percentile(direct.one, 50), 1)).toFixed(2), `${many.toFixed(0)} MiB/s`, (many / mbps(percentile(direct.many, 50), PARALLEL)).toFixed(2)];
    });
    process.stdout.write(`archive ${(length / 1024 ** 2).toFixed(1)} MiB, ${ROUNDS} rounds alternating, median; curl -L to 127.0.0.1\n`);
    process.stdout.write(`${table(['path', '1 download', 'x direct', `${PARALLEL} in parallel (total)`, 'x direct'], rows)}\n`);
  } finally {
    await cleanup();
    await s3.close();
  }
});
