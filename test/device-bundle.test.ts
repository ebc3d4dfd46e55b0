/**
 * Issue 13, the agent process: bin/patchwire.js runs the device commands (init, check, agent,
 * rollback, retry) from the one bundled file `npm run build` makes (dist/device/patchwire-device.mjs),
 * refuses a missing or stale bundle with what to run, and the library `patchwire/agent` loads
 * none of the server's packages. Plus the check's light transport (src/agent/light-fetch.ts)
 * against real HTTP servers on 127.0.0.1.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Cleanup } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { lightFetch } from '../src/agent/light-fetch.js';
import { MAX_JSON_BYTES, postJson } from '../src/agent/http-json.js';
import { BadResponseError, NetworkError, ServerError } from '../src/agent/errors.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const TOKEN = 'device-bundle-token';
const SERVER_PACKAGES = /\/node_modules\/(fastify|@fastify\/|better-sqlite3|kysely|pg|pg-[a-z]+|@aws-sdk\/|prom-client)/;

const suite = Cleanup.forSuite();
/** A copy of the package as a device might hold it: bin/, dist/ and package.json, and no node_modules at all. */
let copy: string;
let fleet: Fleet;
before(async () => {
  const root = await tempDir(suite, 'patchwire-bundle-');
  copy = join(root, 'pkg');
  await mkdir(copy);
  await Promise.all([
    cp(join(REPO, 'bin'), join(copy, 'bin'), { recursive: true }),
    cp(join(REPO, 'dist'), join(copy, 'dist'), { recursive: true }),
    cp(join(REPO, 'package.json'), join(copy, 'package.json')),
  ]);
  fleet = await startFleet(suite, {
    token: TOKEN,
    prefix: 'patchwire-bundle-fleet-',
    releases: [['1.0.0', { 'bin/app': '#!/bin/sh\necho 1.0.0\n' }]],
  });
});

interface Run { code: number; stdout: string; stderr: string }

function run(bin: string, args: string[], opts: { nodeArgs?: string[]; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), bin, ...args], {
      env: { ...process.env, PATCHWIRE_TOKEN: undefined, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

const copyBin = () => join(copy, 'bin', 'patchwire.js');

test('the device commands run from the bundle alone: a copy without node_modules inits, installs through TUF, checks and rolls back', async (t) => {
  // The full CLI cannot start without node_modules (commander): what runs below is the bundle.
  const full = await run(copyBin(), ['publish', '--help']);
  assert.notEqual(full.code, 0);
  assert.match(full.stderr, /commander/);

  const dir = join(await tempDir(t, 'patchwire-bundle-agent-'), 'device');
  const init = await run(copyBin(), ['init', '--dir', dir, '--server', fleet.server.url, '--product', 'acme', '--root', fleet.rootFile, '--device-id', 'aa:bb:cc:0b:00:01', '--json']);
  assert.equal(init.code, 0, init.stderr);
  // The first check installs 1.0.0: TUF metadata refresh and verification (tuf-js, from the bundle), download, extract.
  const first = await run(copyBin(), ['check', '--dir', dir, '--json']);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(pick(JSON.parse(first.stdout)), { result: 'updated', version: '1.0.0' });
  assert.equal(await readFile(join(dir, 'current', 'bin', 'app'), 'utf8'), '#!/bin/sh\necho 1.0.0\n');
  const again = await run(copyBin(), ['check', '--dir', dir, '--force', '--json']);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(pick(JSON.parse(again.stdout)), { result: 'up-to-date', version: '1.0.0' });
  // Usage and refusals are the full CLI's (the same commander program, the device commands only).
  const typo = await run(copyBin(), ['check', '--dir', dir, '--frce']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /unknown option '--frce'/);
  const help = await run(copyBin(), ['check', '--help']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /Usage: patchwire check \[options\]/);
  const rollback = await run(copyBin(), ['rollback', '--dir', dir, '--json']);
  assert.equal(rollback.code, 2);
  assert.match(JSON.parse(rollback.stdout).error.message, /no previous version to roll back to/);
  const agent = await run(copyBin(), ['agent', '--dir', join(dir, 'nothing-here')]);
  assert.equal(agent.code, 2);
  assert.match(agent.stderr, /no agent state at .*run `patchwire init`/);
});

const pick = (r: { result: string; version: string }) => ({ result: r.result, version: r.version });

test('a missing bundle: the device commands fail with what to run and change nothing; the other commands still run', async (t) => {
  const pkg = await packageCopy(t);
  await rm(join(pkg, 'dist', 'device', 'patchwire-device.mjs'));
  const dir = join(await tempDir(t, 'patchwire-bundle-missing-'), 'device');
  const r = await run(join(pkg, 'bin', 'patchwire.js'), ['init', '--dir', dir, '--server', fleet.server.url, '--product', 'acme', '--root', fleet.rootFile, '--json']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bundle dist\/device\/patchwire-device\.mjs is missing: run `npm run build`/);
  assert.deepEqual(Object.keys(JSON.parse(r.stdout)), ['error']);
  assert.equal(JSON.parse(r.stdout).error.code, 'PW_DEVICE_BUNDLE');
  await assert.rejects(readFile(join(dir, '.patchwire', 'state.json')), { code: 'ENOENT' });
  const keygen = await run(join(pkg, 'bin', 'patchwire.js'), ['--help']);
  assert.equal(keygen.code, 0, keygen.stderr);
});

test('a stale bundle (of another build than dist/, or of an unfinished build) is refused, never run', async (t) => {
  const pkg = await packageCopy(t);
  const bin = join(pkg, 'bin', 'patchwire.js');
  const stamp = join(pkg, 'dist', '.build-stamp');
  const built = (await readFile(stamp, 'utf8')).trim();
  await writeFile(stamp, '2000-01-01T00:00:00.000Z 1\n');
  const other = await run(bin, ['check', '--dir', pkg]);
  assert.equal(other.code, 1);
  assert.ok(other.stderr.includes(`is stale: it is of build ${JSON.stringify(built)}, dist/ of build "2000-01-01T00:00:00.000Z 1": run \`npm run build\``), other.stderr);
  await rm(stamp);
  const unfinished = await run(bin, ['agent', '--dir', pkg]);
  assert.equal(unfinished.code, 1);
  assert.match(unfinished.stderr, /is stale: .*no finished build \(dist\/\.build-stamp is missing\): run `npm run build`/);
});

test('patchwire/agent loads none of the server\'s packages (module graph of the library, and the bundle\'s inputs)', async (t) => {
  const dir = await tempDir(t, 'patchwire-bundle-graph-');
  const log = join(dir, 'resolved.txt');
  await writeFile(join(dir, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.PW_RESOLVE_LOG, r.url + '\\n');
  return r;
}
`);
  await writeFile(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`);
  // By the package's own name, as an embedding program imports it (self-reference through `exports`).
  await writeFile(join(REPO, 'dist', `.graph-probe-${process.pid}.mjs`), `const a = await import('patchwire/agent');\nif (typeof a.runCheck !== 'function') process.exit(3);\n`);
  t.after(() => rm(join(REPO, 'dist', `.graph-probe-${process.pid}.mjs`), { force: true }));
  const r = await run(join(REPO, 'dist', `.graph-probe-${process.pid}.mjs`), [], { nodeArgs: ['--import', join(dir, 'register.mjs')], env: { PW_RESOLVE_LOG: log } });
  assert.equal(r.code, 0, r.stderr);
  const urls = (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  // The hook saw the graph (not an empty log): the agent's own modules and its packages.
  assert.ok(urls.some((u) => u.endsWith('/dist/src/agent/check.js')), urls.join('\n'));
  assert.ok(urls.some((u) => u.includes('/node_modules/semver/')), urls.join('\n'));
  assert.deepEqual(urls.filter((u) => SERVER_PACKAGES.test(u) || u.includes('/dist/src/server/') || u.includes('/dist/src/store/')), []);

  const meta = JSON.parse(await readFile(join(REPO, 'dist', 'device', 'patchwire-device.meta.json'), 'utf8')) as { inputs: Record<string, unknown> };
  const inputs = Object.keys(meta.inputs).map((f) => `/${f}`);
  assert.ok(inputs.some((f) => f.includes('/node_modules/tuf-js/')), 'the bundle holds tuf-js');
  assert.deepEqual(inputs.filter((f) => SERVER_PACKAGES.test(f) || f.startsWith('/src/server/') || f.startsWith('/src/store/')), []);
});

/** bin/ and dist/ copied again for a test that breaks them (its own copy), with node_modules linked for the full CLI. */
async function packageCopy(t: { after(fn: () => unknown): void }): Promise<string> {
  const pkg = join(await tempDir(t, 'patchwire-bundle-pkg-'), 'pkg');
  await cp(copy, pkg, { recursive: true });
  const { symlink } = await import('node:fs/promises');
  await symlink(join(REPO, 'node_modules'), join(pkg, 'node_modules'));
  return pkg;
}

// ---- lightFetch: the check's JSON POSTs over node:http, what fetch would do kept ----

async function httpServer(t: { after(fn: () => unknown): void }, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('lightFetch: a JSON POST and its answer; a server error keeps its code; a redirect is sent again through fetch, which follows it', async (t) => {
  const seen: string[] = [];
  const url = await httpServer(t, (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${req.headers['content-length']} ${req.headers['content-type']} ${req.headers.authorization ?? '-'} ${body}`);
      if (req.url === '/moved') {
        res.writeHead(307, { location: '/v1/check' }).end();
      } else if (req.url === '/refused') {
        res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'PW_NO', message: 'not you' }));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ echo: body ? JSON.parse(body) : null }));
      }
    });
  });
  const light = lightFetch();
  assert.deepEqual(await postJson(light, `${url}/v1/check`, { a: 'é' }), { echo: { a: 'é' } });
  await assert.rejects(postJson(light, `${url}/refused`, {}), (err: unknown) => err instanceof ServerError && err.code === 'PW_NO' && err.statusCode === 403);
  let fellBack = 0;
  const counted = lightFetch(() => ((input, init) => { fellBack++; return fetch(input, init); }) as typeof fetch);
  assert.deepEqual(await postJson(counted, `${url}/moved`, { b: 1 }), { echo: { b: 1 } });
  assert.equal(fellBack, 1);
  // GETs are fetch's.
  assert.equal((await counted(`${url}/v1/check`)).status, 200);
  assert.equal(fellBack, 2);
  assert.deepEqual(seen.slice(0, 2), [
    `POST /v1/check ${Buffer.byteLength('{"a":"é"}')} application/json - {"a":"é"}`,
    'POST /refused 2 application/json - {}',
  ]);
  // The 307 was answered to the light request, then fetch sent the POST again and followed it.
  assert.deepEqual(seen.slice(2, 5).map((s) => s.split(' ').slice(0, 2).join(' ')), ['POST /moved', 'POST /moved', 'POST /v1/check']);
  // The Response parts the agent reads: status, headers, clone, text.
  const r = await light(`${url}/v1/check`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"c":2}' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('Content-Type'), 'application/json');
  assert.deepEqual(await r.clone().json(), { echo: { c: 2 } });
  assert.equal(await r.text(), '{"echo":{"c":2}}');
});

test('lightFetch: an answer past the JSON bound is refused, a cut answer and a refused connection are network errors, an abort is the caller\'s', async (t) => {
  const url = await httpServer(t, (req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/huge') {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const more = () => {
          // Endless unless the client stops reading; bounded here so the test ends either way.
          while (sent < 8 * MAX_JSON_BYTES) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
          res.end();
        };
        more();
      } else if (req.url === '/cut') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"partial":');
        setImmediate(() => res.socket?.destroy());
      } else if (req.url === '/slow') {
        // Never answers: the caller's abort ends it.
      }
    });
  });
  const light = lightFetch();
  await assert.rejects(postJson(light, `${url}/huge`, {}), (err: unknown) => err instanceof BadResponseError && /more than 1048576 bytes/.test(err.message));
  await assert.rejects(postJson(light, `${url}/cut`, {}), (err: unknown) => err instanceof NetworkError && /broke while reading the answer/.test(err.message));
  // A port nobody listens on: the same message fetch gives ("fetch failed" and the cause).
  await assert.rejects(postJson(light, 'http://127.0.0.1:1/v1/check', {}), (err: unknown) => err instanceof NetworkError && /cannot reach the server at .*\(fetch failed: .*ECONNREFUSED/.test(err.message));
  const controller = new AbortController();
  const reason = new Error('stopped by the test');
  setImmediate(() => controller.abort(reason));
  await assert.rejects(postJson(light, `${url}/slow`, {}, controller.signal), (err: unknown) => err === reason);
});
