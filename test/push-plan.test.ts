// The agent's side of push without a server: when an announcement makes it check (PushPlan) and
// how it reads the stream (SseReader, bounded). The end-to-end behaviour is in e2e-push.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MIN_PUSH_GAP_MS, PUSH_JITTER_MS, PUSH_RETRIES, PushPlan } from '../src/agent/push/push-plan.js';
import { SseLimitError, SseReader } from '../src/agent/push/sse-reader.js';
import { spreadOffsetSeconds } from '../src/agent/schedule.js';

const device = { deviceId: 'aa:bb:cc:dd:ee:01', version: '1.0.0', rolledBack: null };
const NOW = 1_000_000_000;

test('a release announcement plans a check at the device\'s own offset in the spread, deterministic from its id', () => {
  const plan = new PushPlan();
  assert.equal(plan.announce({ version: '1.1.0', spreadSeconds: 600 }, device, NOW, 0), true);
  assert.equal(plan.dueAt, NOW + spreadOffsetSeconds(device.deviceId, 600) * 1000);
  const other = new PushPlan();
  other.announce({ version: '1.1.0', spreadSeconds: 600 }, { ...device, deviceId: 'aa:bb:cc:dd:ee:02' }, NOW, 0);
  assert.notEqual(other.dueAt, plan.dueAt, 'two devices wake at different offsets');
  // No spread: a small jitter from the device id, below PUSH_JITTER_MS.
  const none = new PushPlan();
  none.announce({ version: '1.1.0', spreadSeconds: 0 }, device, NOW, 0);
  assert.ok(none.dueAt! >= NOW && none.dueAt! < NOW + PUSH_JITTER_MS);
});

test('announcements of a version the device runs, or holds back, plan nothing; a check comes no sooner than MIN_PUSH_GAP_MS after the last', () => {
  const plan = new PushPlan();
  assert.equal(plan.announce({ version: '1.0.0', spreadSeconds: 0 }, device, NOW, 0), false);
  assert.equal(plan.announce({ version: '0.9.0', spreadSeconds: 0 }, device, NOW, 0), false);
  assert.equal(plan.announce({ version: '1.1.0', spreadSeconds: 0 }, { ...device, rolledBack: '1.1.0' }, NOW, 0), false);
  assert.equal(plan.dueAt, undefined);
  assert.equal(plan.announce({ version: '1.2.0', spreadSeconds: 0 }, { ...device, rolledBack: '1.1.0' }, NOW, 0), true, 'above the held-back version');
  const gap = new PushPlan();
  gap.announce({ version: '1.1.0', spreadSeconds: 0 }, device, NOW, NOW);
  assert.equal(gap.dueAt, NOW + MIN_PUSH_GAP_MS);
  // A flood of announcements never moves the check later, nor plans more than one.
  assert.equal(gap.announce({ version: '1.2.0', spreadSeconds: 3600 }, device, NOW, NOW), false);
  assert.equal(gap.dueAt, NOW + MIN_PUSH_GAP_MS);
});

test('after the check: done when the version came; a server not offering it yet is retried a bounded number of times', () => {
  const plan = new PushPlan();
  plan.announce({ version: '1.1.0', spreadSeconds: 0 }, device, NOW, 0);
  plan.take();
  plan.checked({ result: 'updated', version: '1.1.0' }, NOW);
  assert.equal(plan.dueAt, undefined);

  const behind = new PushPlan();
  behind.announce({ version: '1.1.0', spreadSeconds: 0 }, device, NOW, 0);
  let retries = 0;
  for (let i = 0; i < 10; i++) {
    behind.take();
    behind.checked({ result: 'up-to-date', version: '1.0.0' }, NOW);
    if (behind.dueAt === undefined) break;
    assert.ok(behind.dueAt > NOW);
    retries += 1;
  }
  assert.equal(retries, PUSH_RETRIES);
  // Held back (health check failed): no retry.
  const held = new PushPlan();
  held.announce({ version: '1.1.0', spreadSeconds: 0 }, device, NOW, 0);
  held.take();
  held.checked({ result: 'rolled-back', version: '1.0.0' }, NOW);
  assert.equal(held.dueAt, undefined);
  // Updated to 1.1.0 while 1.2.0 was announced meanwhile: checks again.
  const newer = new PushPlan();
  newer.announce({ version: '1.1.0', spreadSeconds: 0 }, device, NOW, 0);
  newer.take();
  newer.announce({ version: '1.2.0', spreadSeconds: 0 }, device, NOW, 0);
  newer.take();
  newer.checked({ result: 'updated', version: '1.1.0' }, NOW);
  assert.ok(newer.dueAt !== undefined);
});

test('the event stream reader: events, multi-line data, comments, CRLF, chunks split anywhere', () => {
  const text = ': hello\n\nevent: release\ndata: {"a":1}\n\r\ndata: one\ndata: two\n\nevent: bye\r\ndata: {}\r\n\r\n';
  const whole = new SseReader().push(text);
  assert.deepEqual(whole, [{ event: 'release', data: '{"a":1}' }, { event: 'message', data: 'one\ntwo' }, { event: 'bye', data: '{}' }]);
  const r = new SseReader();
  const byByte = [...text].flatMap((c) => r.push(c));
  assert.deepEqual(byByte, whole);
});

test('the event stream reader refuses a line or an event past its limit instead of buffering it', () => {
  assert.throws(() => new SseReader(64).push('data: ' + 'x'.repeat(100)), SseLimitError);
  const r = new SseReader(64);
  r.push('data: ' + 'x'.repeat(40) + '\n');
  assert.throws(() => r.push('data: ' + 'x'.repeat(40) + '\n'), SseLimitError);
});
