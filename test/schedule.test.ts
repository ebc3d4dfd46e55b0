import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { computeNextCheck, isDue, spreadOffsetSeconds } from '../src/agent/schedule.js';

const NOW = new Date('2030-01-01T12:00:00.000Z');
const at = (iso: string) => new Date(iso);
const DEV = 'aa:bb:cc:dd:ee:01';

test('isDue: table of cases', () => {
  const cases: Array<[string, Date | string | null, boolean]> = [
    ['never checked (null) is due at once', null, true],
    ['next check in the past', '2030-01-01T11:59:59.999Z', true],
    ['next check exactly now', '2030-01-01T12:00:00.000Z', true],
    ['next check in the future', '2030-01-01T12:00:00.001Z', false],
    ['next check as a Date in the future', at('2030-01-02T00:00:00Z'), false],
    ['unreadable time is due (never stuck)', 'not a time', true],
  ];
  for (const [name, next, expected] of cases) assert.equal(isDue(NOW, next), expected, name);
});

test('computeNextCheck: table of cases', () => {
  const cases: Array<{ name: string; interval: number; schedule: { at: Date; spreadSeconds: number } | null; expected: string }> = [
    { name: 'no schedule: now + interval', interval: 3600, schedule: null, expected: '2030-01-01T13:00:00.000Z' },
    { name: 'schedule earlier than the interval pulls the check in', interval: 3600, schedule: { at: at('2030-01-01T12:30:00Z'), spreadSeconds: 0 }, expected: '2030-01-01T12:30:00.000Z' },
    { name: 'schedule later than the interval is ignored', interval: 3600, schedule: { at: at('2030-01-01T15:00:00Z'), spreadSeconds: 0 }, expected: '2030-01-01T13:00:00.000Z' },
    { name: 'schedule in the past is ignored', interval: 3600, schedule: { at: at('2030-01-01T11:00:00Z'), spreadSeconds: 0 }, expected: '2030-01-01T13:00:00.000Z' },
    { name: 'schedule exactly now is ignored (not in the future)', interval: 3600, schedule: { at: NOW, spreadSeconds: 0 }, expected: '2030-01-01T13:00:00.000Z' },
    { name: 'schedule equal to now + interval stays at the interval', interval: 3600, schedule: { at: at('2030-01-01T13:00:00Z'), spreadSeconds: 0 }, expected: '2030-01-01T13:00:00.000Z' },
    { name: 'short interval', interval: 60, schedule: null, expected: '2030-01-01T12:01:00.000Z' },
  ];
  for (const c of cases) {
    const next = computeNextCheck({ now: NOW, intervalSeconds: c.interval, schedule: c.schedule, deviceId: DEV });
    assert.equal(next.toISOString(), c.expected, c.name);
  }
});

test('spread offset: sha256 of the device id, first 4 bytes scaled into the window, whole seconds', () => {
  const spread = 600;
  const n = createHash('sha256').update(DEV).digest().readUInt32BE(0);
  const expected = Math.floor((n / 2 ** 32) * spread);
  assert.equal(spreadOffsetSeconds(DEV, spread), expected);
  assert.equal(spreadOffsetSeconds(DEV, spread), spreadOffsetSeconds(DEV, spread), 'deterministic');
  assert.equal(spreadOffsetSeconds(DEV, 0), 0, 'spread 0: no offset');

  const next = computeNextCheck({ now: NOW, intervalSeconds: 3600, schedule: { at: at('2030-01-01T12:30:00Z'), spreadSeconds: spread }, deviceId: DEV });
  assert.equal(next.getTime(), at('2030-01-01T12:30:00Z').getTime() + expected * 1000);
});

test('spread offsets stay within [0, spread), are whole seconds, and differ between devices', () => {
  const spread = 3600;
  const offsets = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const id = `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    const o = spreadOffsetSeconds(id, spread);
    assert.ok(Number.isInteger(o) && o >= 0 && o < spread, `offset ${o} of ${id} within the window`);
    offsets.add(o);
  }
  assert.ok(offsets.size > 150, `200 devices spread over many instants (${offsets.size} distinct)`);
  assert.notEqual(spreadOffsetSeconds('aa:bb:cc:dd:ee:01', spread), spreadOffsetSeconds('aa:bb:cc:dd:ee:02', spread));
});

test('spread: a check whose scheduled time + offset lands after the interval keeps the interval', () => {
  // Window of a day starting in 30 minutes: most devices' offsets fall beyond now + 1 h.
  const schedule = { at: at('2030-01-01T12:30:00Z'), spreadSeconds: 86400 };
  for (const id of ['aa:bb:cc:dd:ee:01', 'aa:bb:cc:dd:ee:02', 'aa:bb:cc:dd:ee:03']) {
    const scheduled = schedule.at.getTime() + spreadOffsetSeconds(id, schedule.spreadSeconds) * 1000;
    const next = computeNextCheck({ now: NOW, intervalSeconds: 3600, schedule, deviceId: id });
    const byInterval = NOW.getTime() + 3600_000;
    assert.equal(next.getTime(), Math.min(scheduled, byInterval));
  }
});

test('spread: schedule in the past but offset in the future pulls in to at + offset', () => {
  const spread = 7200;
  // A device whose offset is more than 10 minutes into the window.
  const id = ['aa:bb:cc:dd:ee:01', 'aa:bb:cc:dd:ee:02', 'aa:bb:cc:dd:ee:03', 'aa:bb:cc:dd:ee:04', 'aa:bb:cc:dd:ee:05']
    .find((d) => spreadOffsetSeconds(d, spread) > 600)!;
  const offset = spreadOffsetSeconds(id, spread);
  // Choose `at` so that at + offset is 10 minutes from now, although `at` itself has passed.
  const schedule = { at: new Date(NOW.getTime() + 600_000 - offset * 1000), spreadSeconds: spread };
  assert.ok(offset > 600, 'fixture: at is in the past');
  const next = computeNextCheck({ now: NOW, intervalSeconds: 3600, schedule, deviceId: id });
  assert.equal(next.toISOString(), '2030-01-01T12:10:00.000Z');
});
