import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { DashboardSessions, readCookie } from '../src/server/dashboard/dashboard-sessions.js';
import { hashToken } from '../src/server/admin-auth.js';
import { tempDir } from './helpers/temp-dir.js';

// Two DashboardSessions on one database stand for two server processes: what one issues or
// signs out, the other sees, with nothing kept in memory between requests.
describe('dashboard sessions', () => {
  async function setup(t: { after(fn: () => unknown): void }) {
    const store = await SqliteStore.open(join(await tempDir(t), 'patchwire.db'));
    t.after(() => store.close());
    await store.migrate();
    let now = new Date('2026-12-01T09:00:00Z');
    const clock = () => now;
    const token = hashToken('the-admin-token');
    const a = await DashboardSessions.open(store, token, clock, { ttlSeconds: 3600, maxRevoked: 2 });
    const b = await DashboardSessions.open(store, token, clock, { ttlSeconds: 3600, maxRevoked: 2 });
    return { store, a, b, token, clock, advance: (s: number) => { now = new Date(now.getTime() + s * 1000); } };
  }

  it('a session issued by one process is accepted by another until it expires', async (t) => {
    const { a, b, advance } = await setup(t);
    const { cookie, session } = await a.issue();
    const seen = await b.verify(cookie);
    assert.equal(typeof seen, 'object');
    assert.deepEqual(seen, session);
    assert.ok(b.csrfMatches(session, session.csrf));
    assert.equal(b.csrfMatches(session, session.csrf.slice(0, -1) + (session.csrf.endsWith('A') ? 'B' : 'A')), false);
    assert.equal(b.csrfMatches(session, ''), false);
    advance(3599);
    assert.equal(typeof (await b.verify(cookie)), 'object');
    advance(1);
    assert.equal(await b.verify(cookie), 'expired');
  });

  it('a sign-out through one process is refused by every other', async (t) => {
    const { a, b } = await setup(t);
    const one = await a.issue();
    const two = await a.issue();
    await b.revoke(one.session);
    assert.equal(await a.verify(one.cookie), 'revoked');
    assert.equal(typeof (await a.verify(two.cookie)), 'object', 'other sessions stay signed in');
  });

  it('past maxRevoked live sign-outs every session is signed out (the list stays bounded)', async (t) => {
    const { a, store } = await setup(t);
    const s = await Promise.all([a.issue(), a.issue(), a.issue(), a.issue()]);
    await a.revoke(s[0]!.session);
    await a.revoke(s[1]!.session);
    assert.equal(typeof (await a.verify(s[3]!.cookie)), 'object');
    await a.revoke(s[2]!.session);
    assert.equal(await a.verify(s[3]!.cookie), 'revoked');
    const stored = JSON.parse((await store.getSetting('dashboard_session_revocations'))!);
    assert.deepEqual(stored, { epoch: 1, revoked: {} });
    assert.equal(typeof (await a.verify((await a.issue()).cookie)), 'object', 'new sessions work');
  });

  it('forged, altered and foreign cookies are refused; a new admin token signs every session out', async (t) => {
    const { a, store, clock } = await setup(t);
    const { cookie } = await a.issue();
    const parts = cookie.split('.');
    assert.equal(await a.verify(`${parts.slice(0, 3).join('.')}.${Number(parts[3]) + 3600}.${parts[4]}`), 'forged', 'a later expiry under the old MAC');
    assert.equal(await a.verify('v1.x.0.9999999999.mac'), 'forged');
    assert.equal(await a.verify(''), 'forged');
    assert.equal(await a.verify('x'.repeat(10_000)), 'forged');
    const rotated = await DashboardSessions.open(store, hashToken('a-new-token'), clock);
    assert.equal(await rotated.verify(cookie), 'forged');
  });

  it('readCookie finds one cookie among several', () => {
    assert.equal(readCookie('a=1; pw_session=v1.x; b=2', 'pw_session'), 'v1.x');
    assert.equal(readCookie('pw_sessionx=1', 'pw_session'), undefined);
    assert.equal(readCookie(undefined, 'pw_session'), undefined);
  });
});
