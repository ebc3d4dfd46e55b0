import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import { AuthFailures, addressKey } from '../src/server/auth-failures.js';
import { ApiError } from '../src/server/api-error.js';

function request(ip: string, warnings: string[]): FastifyRequest {
  return { ip, url: '/v1/admin/devices', method: 'GET', log: { warn: (_o: object, msg: string) => warnings.push(msg) } } as unknown as FastifyRequest;
}

const wrong = () => new ApiError('PW_UNAUTHORIZED', 'wrong admin token: use the right one');

test('wrong tokens: 401 up to the limit, then 429 with Retry-After for every token request of that address only, until the window ends', () => {
  let now = 5_000_000;
  const f = new AuthFailures({ limit: 3, windowMs: 60_000, now: () => now });
  const warnings: string[] = [];
  const a = request('198.51.100.7', warnings);
  for (let i = 0; i < 3; i++) {
    f.checkBlocked(a);
    assert.equal(f.failed(a, wrong(), 'admin').code, 'PW_UNAUTHORIZED');
  }
  assert.throws(() => f.failed(a, wrong(), 'admin'), (e: ApiError) => e.code === 'PW_RATE_LIMITED' && e.retryAfterSeconds === 60 && e.statusCode === 429);
  now += 20_000;
  // Blocked before the token is looked at: the right token gets the same 429 (no oracle).
  assert.throws(() => f.checkBlocked(a), (e: ApiError) => e.code === 'PW_RATE_LIMITED' && e.retryAfterSeconds === 40);
  const other = request('198.51.100.8', warnings);
  f.checkBlocked(other); // another address is not affected
  assert.equal(f.failed(other, wrong(), 'admin').code, 'PW_UNAUTHORIZED');
  assert.deepEqual(warnings.map((w) => w.replace(/\d+\.\d+\.\d+\.(\d+)/g, 'IP$1').replace(/\d+ s/, 'N s')), [
    'refused request: wrong admin token from IP7 (further failures from it in this window are counted, not logged)',
    'too many wrong tokens from IP7: every admin, mirror and metrics token request from it is refused for N s',
    'refused request: wrong admin token from IP8 (further failures from it in this window are counted, not logged)',
  ]);
  now += 40_000;
  f.checkBlocked(a); // the window ended
});

test('addresses are counted as IPv4, and IPv6 by its /64', () => {
  assert.equal(addressKey('203.0.113.9'), '203.0.113.9');
  assert.equal(addressKey('::ffff:203.0.113.9'), '203.0.113.9');
  assert.equal(addressKey('2001:db8:0:12:aaaa::1'), '2001:db8:0:12::/64');
  assert.equal(addressKey('2001:DB8::1'), '2001:db8:0:0::/64');
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
  assert.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
});
