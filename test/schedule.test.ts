import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { computeNextCheck, isDue, spreadOffsetSeconds } from '../src/agent/schedule.js';
import { checkPhases, hasTwoDecimals, phaseOpensAt, rolloutAt, rolloutPlacement, rolloutSpreadSeconds } from '../src/protocol/rollout.js';

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

// Staged rollouts (issue 11): a device outside the current phase wakes when its phase opens.
test('rollout: the phase opening pulls the next check in to opensAt + this device\'s offset in the wave\'s spread', () => {
  const id = 'aa:bb:cc:dd:ee:01';
  const rolloutOpens = { at: at('2030-01-01T12:20:00Z'), spreadSeconds: 600 };
  const next = computeNextCheck({ now: NOW, intervalSeconds: 86400, schedule: null, deviceId: id, rolloutOpens });
  assert.equal(next.getTime(), rolloutOpens.at.getTime() + spreadOffsetSeconds(id, 600) * 1000);
  assert.ok(next.getTime() < NOW.getTime() + 86400_000);
});

test('rollout: the earlier of the release schedule and the phase opening wins; neither goes past the interval', () => {
  const id = 'aa:bb:cc:dd:ee:02';
  const schedule = { at: at('2030-01-01T12:10:00Z'), spreadSeconds: 0 };
  const later = { at: at('2030-01-01T12:40:00Z'), spreadSeconds: 0 };
  assert.equal(computeNextCheck({ now: NOW, intervalSeconds: 3600, schedule, deviceId: id, rolloutOpens: later }).toISOString(), '2030-01-01T12:10:00.000Z');
  assert.equal(computeNextCheck({ now: NOW, intervalSeconds: 3600, schedule: later, deviceId: id, rolloutOpens: schedule }).toISOString(), '2030-01-01T12:10:00.000Z');
  // A phase that opens after the interval: the interval (the device checks then anyway).
  const far = { at: at('2030-01-02T12:00:00Z'), spreadSeconds: 0 };
  assert.equal(computeNextCheck({ now: NOW, intervalSeconds: 3600, schedule: null, deviceId: id, rolloutOpens: far }).toISOString(), '2030-01-01T13:00:00.000Z');
});

test('rollout: unknown phase time (null: paused, halted, aborted, no --every) or one already past keeps the interval', () => {
  const id = 'aa:bb:cc:dd:ee:03';
  assert.equal(computeNextCheck({ now: NOW, intervalSeconds: 3600, schedule: null, deviceId: id, rolloutOpens: null }).toISOString(), '2030-01-01T13:00:00.000Z');
  const past = { at: at('2030-01-01T11:00:00Z'), spreadSeconds: 0 };
  assert.equal(computeNextCheck({ now: NOW, intervalSeconds: 3600, schedule: null, deviceId: id, rolloutOpens: past }).toISOString(), '2030-01-01T13:00:00.000Z');
});

test('rollout: the server side of the wake time (phaseOpensAt, rolloutAt, rolloutSpreadSeconds) per device is deterministic', () => {
  const r = { phases: [5, 25, 100], phase: 0, state: 'active' as const, every: 3600, phaseStartedAt: NOW };
  const ids = Array.from({ length: 400 }, (_, i) => `aa:bb:cc:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
  const places = ids.map((id) => rolloutPlacement(id, 'acme', '1.1.0'));
  for (const p of places) assert.ok(p >= 0 && p <= 99.99 && hasTwoDecimals(p), `placement ${p} in 0-99.99 with two decimals`);
  assert.deepEqual(places, ids.map((id) => rolloutPlacement(id, 'acme', '1.1.0')), 'the same every time');
  assert.notDeepEqual(places, ids.map((id) => rolloutPlacement(id, 'acme', '1.2.0')), 'another release places the fleet anew');
  const inside = places.filter((p) => p < 5).length;
  assert.ok(inside > 5 && inside < 40, `about 5% of 400 inside the first phase (${inside})`);
  for (const p of places) {
    const opens = phaseOpensAt(r, p);
    if (p < 5) assert.equal(opens, null, 'inside: nothing to wait for');
    else assert.equal(opens!.getTime(), NOW.getTime() + (p < 25 ? 1 : 2) * 3600_000);
  }
  assert.equal(phaseOpensAt({ ...r, state: 'paused' }, 50), null);
  assert.equal(phaseOpensAt({ ...r, every: null }, 50), null);
  // --every moves an active rollout on from phaseStartedAt; the last phase is complete.
  assert.deepEqual(rolloutAt(r, new Date(NOW.getTime() + 3599_000)), r);
  assert.deepEqual(rolloutAt(r, new Date(NOW.getTime() + 3600_000)), { ...r, phase: 1, phaseStartedAt: new Date(NOW.getTime() + 3600_000) });
  assert.deepEqual(rolloutAt(r, new Date(NOW.getTime() + 9 * 3600_000)), { ...r, phase: 2, state: 'complete', phaseStartedAt: new Date(NOW.getTime() + 7200_000) });
  assert.deepEqual(rolloutAt({ ...r, state: 'paused' }, new Date(NOW.getTime() + 9 * 3600_000)).phase, 0, 'never while paused');
  assert.equal(rolloutSpreadSeconds(3600, null), 360);
  assert.equal(rolloutSpreadSeconds(86400, null), 900);
  assert.equal(rolloutSpreadSeconds(3600, 120), 120, 'the channel\'s schedule spread when it has one');
  assert.equal(rolloutSpreadSeconds(null, null), 0);
  assert.equal(checkPhases([0.5, 81.85, 100]), undefined, 'two decimals, whatever floating point makes of them');
  assert.match(checkPhases([5.555, 100])!, /two decimals/);
});
