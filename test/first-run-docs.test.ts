/**
 * What a new user meets before any code of ours runs: the README's quick start, run as written,
 * and an install that does not warn. Real bash, real npx, a real server on 127.0.0.1:8090.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import semver from 'semver';

const repo = fileURLToPath(new URL('..', import.meta.url));

test('every installed package supports this Node (npm ci prints no EBADENGINE warning)', () => {
  const lock = JSON.parse(readFileSync(`${repo}/package-lock.json`, 'utf8')) as { packages: Record<string, { engines?: { node?: string } | string[]; optional?: boolean; dev?: boolean }> };
  const refused = Object.entries(lock.packages)
    .filter(([, p]) => p.engines && !Array.isArray(p.engines) && p.engines.node)
    .filter(([, p]) => !semver.satisfies(process.version, (p.engines as { node: string }).node, { includePrerelease: true }))
    .map(([name, p]) => `${name} wants node ${(p.engines as { node: string }).node}`);
  assert.deepEqual(refused, [], `packages in package-lock.json that do not support ${process.version}`);
});

test("the README's quick start runs as written and leaves no server behind", () => {
  const readme = readFileSync(`${repo}/README.md`, 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, 'the README has a quick start shell block');
  const r = spawnSync('bash', ['-e', '-c', `${block}\nrm -rf "$Q"\n`], { cwd: repo, encoding: 'utf8', timeout: 180_000, env: { ...process.env, PATCHWIRE_TOKEN: undefined } });
  assert.equal(r.status, 0, `the quick start failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /"result":"updated","version":"1\.0\.0"/);
  assert.match(r.stdout, /^echo hello 1\.0\.0$/m);
  assert.match(r.stdout, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}\s+acme\s+stable\s+1\.0\.0\s/m); // devices: by MAC, at 1.0.0
  // `kill $!` at its end stopped the server (started through npx): nothing listens on 8090.
  const probe = spawnSync('bash', ['-c', 'for i in $(seq 1 50); do curl -sf http://127.0.0.1:8090/healthz >/dev/null || exit 0; sleep 0.2; done; exit 1']);
  assert.equal(probe.status, 0, 'a server still answers on 127.0.0.1:8090 after the quick start');
});
