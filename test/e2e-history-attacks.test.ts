/**
 * Device history under attack (issue 11; docs/security.md "Device history and paging under
 * attack"), on both stores: a real `patchwire serve` on SQLite and one on PostgreSQL, devices'
 * reports and the admin API over real HTTP on 127.0.0.1. The attacker holds a device token, or
 * sends the admin API cursors it made up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { tempPgDatabase } from './helpers/postgres.js';
import { REPORTS_KEPT_PER_DEVICE } from '../src/store/store.js';
import { reportDetail } from '../src/agent/update/progress.js';
import type { DeviceDetail } from '../src/protocol/wire.js';

const TOKEN = 'e2e-history-attacks-token';
const STORES = (process.env.PATCHWIRE_STORES ?? 'sqlite,postgres').split(',');

async function report(f: Fleet, deviceId: string, body: Record<string, unknown>): Promise<{ status: number; body: { code?: string; message?: string } }> {
  const res = await fetch(`${f.server.url}/v1/report`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(await f.sessions.headers(f.server.url, deviceId, 'acme')) },
    body: JSON.stringify({ deviceId, product: 'acme', channel: 'stable', ...body }),
  });
  return { status: res.status, body: (await res.json()) as { code?: string; message?: string } };
}

const admin = (f: Fleet, path: string) => fetch(`${f.server.url}/v1/admin${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
const cursor = (deviceId: string, product: string) => Buffer.from(JSON.stringify([deviceId, product])).toString('base64url');

for (const store of STORES) {
  test(`${store}: a flood of reports keeps ${REPORTS_KEPT_PER_DEVICE} per device; a NUL or an oversized detail and forged cursors are refused with 400, never a 500`, async (t) => {
    const args = store === 'postgres' ? ['--db', await tempPgDatabase(t)] : [];
    const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-history-attacks-', server: { args: ['--device-token-ttl', '1d', ...args] }, releases: [['1.0.0', { README: 'one' }]] });
    const mac = 'aa:bb:cc:79:00:01';
    const flood = (i: number) => ({ event: 'failed', version: null, previousVersion: null, detail: `flood ${i}` });

    // 260 reports, 20 at a time: the bound holds under concurrent writes, the newest are kept.
    const n = 260;
    for (let i = 0; i < n; i += 20) {
      const answers = await Promise.all(Array.from({ length: 20 }, (_, k) => report(f, mac, flood(i + k))));
      for (const a of answers) assert.equal(a.status, 200, JSON.stringify(a.body));
    }
    let shown = await (await admin(f, `/products/acme/devices/${mac}`)).json() as DeviceDetail;
    assert.equal(shown.history.length, REPORTS_KEPT_PER_DEVICE, 'the history is cut to its bound');
    const kept = new Set(shown.history.map((h) => h.error));
    assert.ok(kept.has(`flood ${n - 1}`) && !kept.has('flood 0'), 'the newest are kept, the oldest dropped');

    // A NUL in the detail: PostgreSQL text cannot hold it (it was a 500 there); refused on both, nothing stored.
    const nul = await report(f, mac, { event: 'failed', version: null, previousVersion: null, detail: 'health output \u0000\u0001 binary' });
    assert.equal(nul.status, 400, JSON.stringify(nul.body));
    assert.equal(nul.body.code, 'PW_BAD_REQUEST');
    assert.match(nul.body.message!, /NUL character.*send the text without it/);
    // What the agent sends instead is taken.
    const cleaned = reportDetail('health output \u0000\u0001 binary');
    assert.equal((await report(f, mac, { event: 'failed', version: null, previousVersion: null, detail: cleaned })).status, 200);
    // A detail over 1000 characters is refused too.
    assert.equal((await report(f, mac, { event: 'failed', version: null, previousVersion: null, detail: 'x'.repeat(1001) })).status, 400);
    shown = await (await admin(f, `/products/acme/devices/${mac}`)).json() as DeviceDetail;
    assert.equal(shown.history.length, REPORTS_KEPT_PER_DEVICE);
    assert.equal(shown.history[0]!.error, cleaned, 'the newest entry is the cleaned report; the refused ones left nothing');

    // Forged paging cursors: 400 naming what to do, never a 500 or another product's rows.
    for (const forged of [cursor('a\u0000', 'acme'), cursor('\ud800', 'acme'), cursor('x'.repeat(300), 'acme'), cursor('aa', '\u0000'), 'not-base64!', Buffer.from('[1,2]').toString('base64url'), 'A'.repeat(1025)]) {
      const res = await admin(f, `/devices?product=acme&after=${encodeURIComponent(forged)}`);
      assert.equal(res.status, 400, `${forged.slice(0, 40)}: ${await res.clone().text()}`);
      assert.match(((await res.json()) as { message: string }).message, /pass the `next` of the previous page/);
    }
    // A well-formed one that no page ends on just starts there (it positions the range, nothing more).
    const made = await admin(f, `/devices?product=acme&after=${cursor("' OR 1=1 --", 'acme')}`);
    assert.equal(made.status, 200);
  });
}
