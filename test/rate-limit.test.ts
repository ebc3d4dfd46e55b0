import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiter } from '../src/server/rate-limit.js';

test('a key gets `limit` events per window, then a Retry-After until the window ends', () => {
  let now = 1_000_000;
  const rl = new RateLimiter({ limit: 3, windowMs: 10_000, now: () => now });
  for (let i = 0; i < 3; i++) assert.deepEqual(rl.take('10.0.0.1'), { ok: true });
  assert.deepEqual(rl.take('10.0.0.1'), { ok: false, retryAfterSeconds: 10, firstRefusal: true });
  now += 4_500;
  assert.deepEqual(rl.take('10.0.0.1'), { ok: false, retryAfterSeconds: 6, firstRefusal: false }, 'logged once per window');
  assert.equal(rl.blocked('10.0.0.1'), true);
  assert.deepEqual(rl.take('10.0.0.2'), { ok: true }, 'another key has its own window');
  now += 5_500;
  assert.equal(rl.blocked('10.0.0.1'), false);
  assert.deepEqual(rl.take('10.0.0.1'), { ok: true }, 'a new window');
});

test('memory stays bounded: at most maxKeys keys, ended windows and then the oldest dropped first', () => {
  let now = 0;
  const rl = new RateLimiter({ limit: 1, windowMs: 1000, maxKeys: 100, now: () => now });
  for (let i = 0; i < 10_000; i++) rl.take(`k${i}`);
  assert.ok(rl.size <= 100, `tracked ${rl.size} keys`);
  assert.equal(rl.take('k9999').ok, false, 'the newest key is still limited');
  now += 1000;
  rl.take('fresh');
  assert.equal(rl.size, 1, 'ended windows were dropped to make room');
});
