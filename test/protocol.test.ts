/** Unit tests of the wire vocabulary: version order, MAC normalisation, durations, date-times. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareVersions, isHigher, isVersion } from '../src/protocol/version.js';
import { normaliseMac } from '../src/protocol/mac.js';
import { formatDuration, parseDuration } from '../src/protocol/duration.js';
import { parseIsoDateTime } from '../src/protocol/time.js';
import { isName } from '../src/protocol/names.js';

test('version order is semver precedence, not string order', () => {
  const sorted = ['1.10.0', '1.2.0', '1.2.0-beta.2', '1.2.0-beta.10', '1.2.0-alpha', '0.9.9', '2.0.0-rc.1', '2.0.0'];
  assert.deepEqual([...sorted].sort(compareVersions), ['0.9.9', '1.2.0-alpha', '1.2.0-beta.2', '1.2.0-beta.10', '1.2.0', '1.10.0', '2.0.0-rc.1', '2.0.0']);
  assert.ok(isHigher('1.10.0', '1.9.0'));
  assert.ok(!isHigher('1.0.0', '1.0.0'), 'equal is not higher');
  assert.ok(!isHigher('1.0.0-rc.1', '1.0.0'), 'a pre-release is lower than its release');
  assert.ok(isHigher('0.0.1', null), 'anything is higher than nothing installed');
  assert.equal(compareVersions('1.0.0+build.1', '1.0.0'), 0, 'build metadata does not order');
});

test('isVersion accepts strict semver only', () => {
  for (const v of ['1.2.3', '0.0.0', '1.2.3-beta.1', '1.2.3+sha.abc']) assert.ok(isVersion(v), v);
  for (const v of ['v1.2.3', '1.2', '1', '', ' 1.2.3', '1.2.3 ', '01.2.3', 'latest', 12, null, '1.2.3'.padEnd(200, '0')]) assert.ok(!isVersion(v), String(v));
});

test('MAC addresses normalise to lower-case colon form; junk and all-zero are refused', () => {
  const cases: Array<[unknown, string | undefined]> = [
    ['AA:BB:CC:DD:EE:FF', 'aa:bb:cc:dd:ee:ff'],
    ['aa-bb-cc-dd-ee-ff', 'aa:bb:cc:dd:ee:ff'],
    ['AABBCCDDEEFF', 'aa:bb:cc:dd:ee:ff'],
    [' 02:fc:00:00:00:01 ', '02:fc:00:00:00:01'],
    ['aa:bb-cc:dd:ee:ff', undefined], // mixed separators
    ['aa:bb:cc:dd:ee', undefined],
    ['aa:bb:cc:dd:ee:ff:00', undefined],
    ['gg:bb:cc:dd:ee:ff', undefined],
    ['00:00:00:00:00:00', undefined],
    ['../../etc', undefined],
    [42, undefined],
  ];
  for (const [input, out] of cases) assert.equal(normaliseMac(input), out, String(input));
});

test('durations parse and format', () => {
  assert.equal(parseDuration('90s'), 90);
  assert.equal(parseDuration('15m'), 900);
  assert.equal(parseDuration('1h30m'), 5400);
  assert.equal(parseDuration('2d'), 172800);
  assert.equal(parseDuration('3600'), 3600);
  for (const bad of ['', '1x', 'h', '-5m', '1.5h', '1h 30m', null]) assert.equal(parseDuration(bad), undefined, String(bad));
  assert.equal(formatDuration(5400), '1h30m');
  assert.equal(formatDuration(0), '0s');
});

test('ISO date-times: zones required, impossible dates refused', () => {
  assert.equal(parseIsoDateTime('2026-12-01T09:00:00Z')?.toISOString(), '2026-12-01T09:00:00.000Z');
  assert.equal(parseIsoDateTime('2026-12-01T10:00:00+01:00')?.toISOString(), '2026-12-01T09:00:00.000Z');
  assert.equal(parseIsoDateTime('2028-02-29T00:00Z')?.toISOString(), '2028-02-29T00:00:00.000Z');
  for (const bad of ['2030-02-30T09:00:00Z', '2027-02-29T00:00:00Z', '2026-13-01T00:00:00Z', '2026-12-01T24:00:00Z', '2026-12-01T09:00:00', '2026-12-01', 'tomorrow', 1]) {
    assert.equal(parseIsoDateTime(bad), undefined, String(bad));
  }
});

test('product and channel names', () => {
  for (const n of ['acme', 'acme-editor', 'a', 'beta.2', 'x_y']) assert.ok(isName(n), n);
  for (const n of ['', 'Acme', '-acme', '../acme', 'a/b', 'a'.repeat(65), 'a b']) assert.ok(!isName(n), n);
});
