import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { initAgent, type InitOptions } from '../src/agent/init.js';
import { loadState, saveState, type AgentState } from '../src/agent/state.js';
import { AgentStateError, AlreadyInitialisedError, InvalidInputError } from '../src/agent/errors.js';
import { tempDir } from './helpers/temp-dir.js';

/** A file shaped like signed TUF root metadata (init checks the shape; tuf-js verifies it later). */
const ROOT_BYTES = Buffer.from('{"signatures":[{"keyid":"ab","sig":"cd"}],"signed":{"_type":"root","version":1,"spec_version":"1.0.31"}}\n');

async function fixture(t: { after(fn: () => Promise<void>): void }) {
  const base = await tempDir(t, 'pw-agent-state-');
  const rootFile = join(base, 'acme.root.json');
  await writeFile(rootFile, ROOT_BYTES);
  const dir = join(base, 'install');
  const opts: InitOptions = { dir, server: 'http://127.0.0.1:8080/', product: 'acme-editor', rootFile, deviceId: 'AA-BB-CC-DD-EE-01' };
  return { base, dir, rootFile, opts };
}

/** Every path below `dir` with its size, to prove that a refused call changed nothing. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const r = `${rel}${e.name}`;
      if (e.isDirectory()) {
        out.push(`${r}/`);
        await walk(join(d, e.name), `${r}/`);
      } else out.push(`${r} ${(await stat(join(d, e.name))).size}`);
    }
  };
  await walk(dir, '');
  return out.sort();
}

test('init writes a valid state, the exact root bytes and versions/', async (t) => {
  const { dir, opts } = await fixture(t);
  const state = await initAgent(opts);
  const expected: AgentState = {
    format: 1,
    server: 'http://127.0.0.1:8080',
    product: 'acme-editor',
    channel: 'stable',
    deviceId: 'aa:bb:cc:dd:ee:01',
    intervalSeconds: 3600,
    version: null,
    previousVersion: null,
    nextCheckAt: null,
    lastCheckAt: null,
    rolledBack: null,
    pendingReport: null,
  };
  assert.deepEqual(state, expected);
  assert.deepEqual(await loadState(join(dir, '.patchwire', 'state.json')), expected);
  assert.deepEqual(await readFile(join(dir, '.patchwire', 'tuf', 'root.json')), ROOT_BYTES);
  assert.ok((await stat(join(dir, 'versions'))).isDirectory());
});

test('init takes channel and interval', async (t) => {
  const { opts } = await fixture(t);
  const state = await initAgent({ ...opts, channel: 'beta', intervalSeconds: 900, server: 'https://updates.example.com/pw' });
  assert.equal(state.channel, 'beta');
  assert.equal(state.intervalSeconds, 900);
  assert.equal(state.server, 'https://updates.example.com/pw');
});

test('init refuses bad input and leaves the folder unchanged', async (t) => {
  const { base, dir, opts } = await fixture(t);
  await writeFile(join(base, 'not-json.json'), '{"signed": ');
  await writeFile(join(base, 'targets.json'), '{"signatures":[],"signed":{"_type":"targets"}}');
  const cases: Array<[string, Partial<InitOptions>, string]> = [
    ['ftp URL', { server: 'ftp://example.com' }, 'server'],
    ['URL with query', { server: 'http://example.com/?a=1' }, 'server'],
    ['URL with empty query', { server: 'http://example.com/?' }, 'server'],
    ['URL with fragment', { server: 'http://example.com/#x' }, 'server'],
    ['not a URL', { server: 'example.com' }, 'server'],
    ['URL with credentials', { server: 'http://u:p@example.com' }, 'server'],
    ['upper-case product', { product: 'Acme' }, 'product'],
    ['product with slash', { product: 'a/b' }, 'product'],
    ['empty channel', { channel: '' }, 'channel'],
    ['interval 0', { intervalSeconds: 0 }, 'interval'],
    ['fractional interval', { intervalSeconds: 1.5 }, 'interval'],
    ['bad device id', { deviceId: 'not-a-mac' }, 'deviceId'],
    ['all-zero device id', { deviceId: '00:00:00:00:00:00' }, 'deviceId'],
    ['missing root file', { rootFile: join(base, 'missing.json') }, 'root'],
    ['root file not JSON', { rootFile: join(base, 'not-json.json') }, 'root'],
    ['root file of the wrong type', { rootFile: join(base, 'targets.json') }, 'root'],
  ];
  // The install folder does not exist yet: a refused init must not create it.
  for (const [name, change, field] of cases) {
    await assert.rejects(initAgent({ ...opts, ...change }), (err: unknown) => {
      assert.ok(err instanceof InvalidInputError, `${name}: ${String(err)}`);
      assert.equal(err.field, field, name);
      return true;
    });
    await assert.rejects(stat(dir), { code: 'ENOENT' }, `${name}: folder created`);
  }
  // An existing folder with content stays exactly as it was.
  await mkdir(dir);
  await writeFile(join(dir, 'keep.txt'), 'x');
  const before = await snapshot(dir);
  for (const [name, change] of cases) {
    await assert.rejects(initAgent({ ...opts, ...change }), InvalidInputError, name);
    assert.deepEqual(await snapshot(dir), before, `${name}: folder changed`);
  }
});

test('init refuses to run over an existing state', async (t) => {
  const { dir, opts } = await fixture(t);
  await initAgent(opts);
  const statePath = join(dir, '.patchwire', 'state.json');
  const before = await readFile(statePath);
  await assert.rejects(initAgent({ ...opts, product: 'other' }), (err: unknown) => {
    assert.ok(err instanceof AlreadyInitialisedError);
    assert.match(err.message, /already initialised/);
    assert.ok(err.message.includes(statePath));
    return true;
  });
  assert.deepEqual(await readFile(statePath), before);
});

test('loadState: missing, corrupt and invalid states give AgentStateError naming the path', async (t) => {
  const { dir, opts } = await fixture(t);
  const statePath = join(dir, '.patchwire', 'state.json');
  await assert.rejects(loadState(statePath), (err: unknown) => {
    assert.ok(err instanceof AgentStateError);
    assert.equal(err.path, statePath);
    assert.ok(err.message.includes(statePath));
    assert.match(err.message, /patchwire init/);
    return true;
  });

  const good = await initAgent(opts);
  const text = await readFile(statePath, 'utf8');
  const variants: Array<[string, string | object, RegExp]> = [
    ['truncated JSON', text.slice(0, text.length / 2), /not valid JSON/],
    ['empty file', '', /not valid JSON/],
    ['array', [], /not a JSON object/],
    ['unknown format', { ...good, format: 2 }, /unknown format 2/],
    ['no format', { ...good, format: undefined }, /unknown format/],
    ['server not a string', { ...good, server: 42 }, /"server"/],
    ['server with query', { ...good, server: 'http://a/?x' }, /"server"/],
    ['bad product', { ...good, product: 'A B' }, /"product"/],
    ['bad channel', { ...good, channel: null }, /"channel"/],
    ['device id not normalised', { ...good, deviceId: 'AA:BB:CC:DD:EE:01' }, /"deviceId"/],
    ['interval as string', { ...good, intervalSeconds: '3600' }, /"intervalSeconds"/],
    ['interval negative', { ...good, intervalSeconds: -1 }, /"intervalSeconds"/],
    ['version not semver', { ...good, version: 'v1' }, /"version"/],
    ['previousVersion number', { ...good, previousVersion: 1 }, /"previousVersion"/],
    ['rolledBack bad', { ...good, rolledBack: '1.2' }, /"rolledBack"/],
    ['nextCheckAt not a time', { ...good, nextCheckAt: 'tomorrow' }, /"nextCheckAt"/],
    ['lastCheckAt number', { ...good, lastCheckAt: 0 }, /"lastCheckAt"/],
    ['pendingReport bad event', { ...good, pendingReport: { deviceId: good.deviceId, product: 'acme-editor', channel: 'stable', event: 'exploded', version: '1.0.0', previousVersion: null } }, /"pendingReport"/],
    ['pendingReport a string', { ...good, pendingReport: 'x' }, /"pendingReport"/],
  ];
  for (const [name, content, re] of variants) {
    await writeFile(statePath, typeof content === 'string' ? content : JSON.stringify(content));
    await assert.rejects(loadState(statePath), (err: unknown) => {
      assert.ok(err instanceof AgentStateError, `${name}: ${String(err)}`);
      assert.ok(err.message.includes(statePath), `${name}: path in message`);
      assert.match(err.message, re, name);
      assert.match(err.message, /patchwire init/, `${name}: says what to do`);
      return true;
    });
  }
});

test('saveState writes atomically: round-trips and leaves no temporary files', async (t) => {
  const { dir, opts } = await fixture(t);
  const state = await initAgent(opts);
  const statePath = join(dir, '.patchwire', 'state.json');
  const next: AgentState = {
    ...state,
    version: '1.2.0',
    previousVersion: '1.1.0',
    nextCheckAt: '2030-01-01T13:00:00.000Z',
    lastCheckAt: '2030-01-01T12:00:00.000Z',
    pendingReport: { deviceId: state.deviceId, product: state.product, channel: state.channel, event: 'applied', version: '1.2.0', previousVersion: '1.1.0' },
  };
  for (let i = 0; i < 5; i++) await saveState(statePath, { ...next, intervalSeconds: 60 + i });
  assert.deepEqual(await loadState(statePath), { ...next, intervalSeconds: 64 });
  const names = await readdir(join(dir, '.patchwire'));
  assert.deepEqual(names.filter((n) => n.endsWith('.tmp') || n.startsWith('.')), []);
  // A state the agent would refuse later is never written.
  await assert.rejects(saveState(statePath, { ...next, version: 'nope' }), AgentStateError);
  assert.equal((await loadState(statePath)).version, '1.2.0');
});
