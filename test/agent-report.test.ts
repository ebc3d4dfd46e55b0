/**
 * The agent's report sending (src/agent/report.ts) against a real HTTP server on 127.0.0.1: a
 * report the server refuses for good (409 PW_NOT_OFFERED) is settled and not kept pending; a
 * server error or an unreachable server keeps it pending for the next check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { trySendReport } from '../src/agent/report.js';
import type { ReportRequest } from '../src/protocol/index.js';

const report = { deviceId: 'aa:bb:cc:00:00:01', product: 'acme', channel: 'stable', event: 'failed', version: '1.0.0', previousVersion: '1.0.0', detail: 'update to 1.1.0 failed' } as unknown as ReportRequest;

async function serverAnswering(status: number, body: unknown): Promise<{ url: string; server: Server; seen: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    n++;
    req.resume();
    req.on('end', () => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, seen: () => n };
}

test('a report the server refuses for good (409 PW_NOT_OFFERED) is settled; a 500 or a 409 of another code keeps it pending', async (t) => {
  const cases: Array<[number, unknown, boolean]> = [
    [200, { ok: true }, true],
    [409, { code: 'PW_NOT_OFFERED', message: 'acme/stable 1.1.0 was never offered to this device' }, true],
    [409, { code: 'PW_CONFLICT', message: 'something else' }, false],
    [500, { code: 'PW_INTERNAL', message: 'boom' }, false],
  ];
  for (const [status, body, settled] of cases) {
    const s = await serverAnswering(status, body);
    t.after(() => s.server.close());
    assert.equal(await trySendReport(fetch, s.url, report), settled, `${status} ${JSON.stringify(body)}`);
    assert.equal(s.seen(), 1, 'sent once');
  }
});

test('an unreachable server keeps the report pending', async () => {
  const s = await serverAnswering(200, {});
  const url = s.url;
  await new Promise<void>((r) => s.server.close(() => r()));
  assert.equal(await trySendReport(fetch, url, report), false);
});
