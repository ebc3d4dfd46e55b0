// Convoy (src/server/mirror/push-convoy.ts): mirrors pushed from the same cursor keep within
// PUSH_LEAD pages of the slowest, so the pages they share stay in PushPages and are read once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { Convoy, PUSH_LEAD, PUSH_PAGES_KEPT } from '../src/server/mirror/push-convoy.js';

/** Starts `member`'s next advance; `done()` says whether it has resolved yet. */
function advance(c: Convoy, member: string): { done: () => boolean; p: Promise<void> } {
  let resolved = false;
  const p = c.advance(member).then(() => { resolved = true; });
  return { done: () => resolved, p };
}

test('a member PUSH_LEAD pages ahead of the slowest waits until the slowest takes a page; the lead fits in the pages kept', async () => {
  assert.ok(PUSH_LEAD + 2 <= PUSH_PAGES_KEPT, 'the slowest page, the lead and the prefetched next page are all kept');
  const c = new Convoy();
  c.join('fast');
  c.join('slow');
  for (let i = 0; i < PUSH_LEAD; i++) await c.advance('fast');
  const blocked = advance(c, 'fast');
  await tick();
  assert.equal(blocked.done(), false, `the leader waits at ${PUSH_LEAD} pages ahead`);
  await c.advance('slow');
  await blocked.p;
  assert.equal(blocked.done(), true, 'and goes on once the slowest took its page');
  const again = advance(c, 'fast');
  await tick();
  assert.equal(again.done(), false, 'still bounded: waits again at the lead');
  c.leave('slow');
  await again.p;
  for (let i = 0; i < 3 * PUSH_LEAD; i++) await c.advance('fast'); // alone: never waits
});

test('a member that fails or ends leaves, and the ones waiting on it go on; the slowest never waits', async () => {
  const c = new Convoy();
  for (const m of ['a', 'b', 'c']) c.join(m);
  for (let i = 0; i < PUSH_LEAD; i++) {
    await c.advance('a');
    await c.advance('b');
  }
  const a = advance(c, 'a');
  const b = advance(c, 'b');
  await tick();
  assert.deepEqual([a.done(), b.done()], [false, false], 'both wait on c');
  await c.advance('c'); // the slowest is never held back
  await Promise.all([a.p, b.p]);
  const a2 = advance(c, 'a');
  await tick();
  assert.equal(a2.done(), false);
  c.leave('c');
  await a2.p;
  assert.equal(a2.done(), true, 'c left: a goes on, b is now the slowest');
});
