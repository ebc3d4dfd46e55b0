/**
 * Issue 13: several releases published at once are queued, not computed together. A real server
 * (its delta worker held 4 s per computation by the PATCHWIRE_DELTA_DELAY_MS test hook) gets ten
 * releases published back to back; its log must show one computation at a time (each "computing a
 * delta" is followed by its "delta ready" before the next starts), so at most one pair of tree
 * streams is in memory, with at most 8 releases waiting (the rest dropped, and logged as such),
 * and every release not dropped gets its delta.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFleet } from './helpers/fleet.js';
import { waitFor } from './helpers/wait-for.js';

const TOKEN = 'queue-admin';

function files(version: string): Record<string, string> {
  const lines = [];
  for (let i = 0; i < 2000; i++) lines.push(`export const value_${i} = ${(i * 104729) % 1000003}; // line ${i}`);
  lines[1000] = `export const version = '${version}';`;
  return { 'lib/app.js': lines.join('\n'), VERSION: version };
}

interface LogLine { msg?: string; from?: string; to?: string; release?: string }

test('ten releases published back to back: deltas are computed one at a time, at most 8 wait, none is lost silently', async (t) => {
  const f = await startFleet(t, {
    token: TOKEN, prefix: 'patchwire-dq-',
    server: { args: ['--log-level', 'info'], env: { PATCHWIRE_ENABLE_FAULTS: '1', PATCHWIRE_DELTA_DELAY_MS: '4000' } },
    releases: [['1.0.0', files('1.0.0')]],
  });
  const versions = Array.from({ length: 10 }, (_, i) => `1.1.${i}`);
  // Back to back (each must be higher than the last); the first computations are held meanwhile.
  for (const v of versions) {
    const r = await f.publish(v, files(v));
    assert.equal(r.code, 0, r.stderr);
  }
  const log = (): LogLine[] => f.server.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
  const dropped = () => log().filter((l) => /too many releases wait/.test(l.msg ?? '')).length;
  const ends = (l: LogLine) => l.msg === 'delta ready' || /not offered|computing deltas failed|delta computation/.test(l.msg ?? '');
  const ended = () => log().filter(ends).length;
  const ready = () => log().filter((l) => l.msg === 'delta ready').length;
  // Every release (one computation each: from the release before it) ends its computation or is dropped.
  await waitFor(() => ended() + dropped() >= versions.length && log().filter((l) => l.msg === 'computing a delta').length === ended(), {
    what: 'every published release to get its delta or be dropped', timeout: 240_000, interval: 500, detail: f.server.output,
  });
  let running = 0;
  let most = 0;
  for (const l of log()) {
    if (l.msg === 'computing a delta') most = Math.max(most, ++running);
    if (ends(l)) running--;
  }
  assert.equal(most, 1, 'never two computations at once');
  assert.ok(dropped() <= versions.length - 1, 'the running one is never dropped');
  assert.equal(ended() + dropped(), versions.length, `${ended()} computed + ${dropped()} dropped`);
  assert.ok(ready() >= 1, 'deltas were made');
});
