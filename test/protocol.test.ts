/**
 * Unit tests of the wire vocabulary: version order, MAC normalisation, durations, date-times,
 * the URL layout and target names, the signed release field, the http(s) URL check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareVersions, isHigher, isVersion } from '../src/protocol/version.js';
import { normaliseMac, normaliseMacPrefix } from '../src/protocol/mac.js';
import { formatDuration, parseDuration } from '../src/protocol/duration.js';
import { parseIsoDateTime } from '../src/protocol/time.js';
import { isName } from '../src/protocol/names.js';
import {
  API_PREFIX, ROUTES, METADATA_ROLES, checkUrl, reportUrl, metadataBaseUrl, metadataFileName, parseMetadataFileName,
  targetFilePath, parseTargetFilePath, targetUrl,
} from '../src/protocol/urls.js';
import { DELTAS_PATH_PATTERN, MOVED_TARGET_PATH, deltaTargetPath, isDeltaTargetPath, releaseTargetPath } from '../src/protocol/targets.js';
import { parseReleaseCustom } from '../src/protocol/release-custom.js';
import { normaliseServerUrl, parseHttpUrl } from '../src/protocol/http-url.js';
import { REPORT_EVENTS, isReportEvent } from '../src/protocol/wire.js';

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

test('MAC addresses normalise to lower-case colon form; junk, all-zero and broadcast are refused', () => {
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
    ['FF:FF:FF:FF:FF:FF', undefined], // broadcast
    ['ff:ff:ff:ff:ff:fe', 'ff:ff:ff:ff:ff:fe'],
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

/** The path a fastify route pattern (`:param`, `*`) matches, as a RegExp. */
const routeRe = (route: string) => new RegExp(`^${API_PREFIX}${route.replace(/\./g, '\\.').replace(/:[a-z]+/g, '[^/]+').replace('*', '.+')}$`);

test('device URLs: check and report under the API prefix, on the routes the server registers', () => {
  assert.equal(checkUrl('http://h:8080'), 'http://h:8080/v1/check');
  assert.equal(reportUrl('https://u.example.com/base'), 'https://u.example.com/base/v1/report');
  assert.equal(new URL(checkUrl('http://h')).pathname, `${API_PREFIX}${ROUTES.check}`);
  assert.equal(new URL(reportUrl('http://h')).pathname, `${API_PREFIX}${ROUTES.report}`);
});

test('metadata file names round-trip through the parser; other names are refused', () => {
  for (const role of METADATA_ROLES) {
    for (const version of [1, 7, 123456789]) assert.deepEqual(parseMetadataFileName(metadataFileName(role, version)), { role, version });
    assert.deepEqual(parseMetadataFileName(metadataFileName(role)), { role, version: undefined });
  }
  assert.equal(metadataFileName('snapshot', 3), '3.snapshot.json');
  assert.equal(metadataFileName('timestamp'), 'timestamp.json');
  for (const bad of ['1.mirrors.json', 'root', '1.root.JSON', '../1.root.json', '1234567890.root.json', 'x.root.json', '-1.root.json', '']) {
    assert.equal(parseMetadataFileName(bad), undefined, bad);
  }
  const url = new URL(metadataBaseUrl('http://h', 'acme') + metadataFileName('targets', 2));
  assert.equal(url.href, 'http://h/v1/products/acme/tuf/2.targets.json');
  assert.match(url.pathname, routeRe(ROUTES.metadata));
});

test('target names: release, delta and moved paths; served by content hash, parsed back to the hash', () => {
  const sha = 'ab'.repeat(32);
  assert.equal(releaseTargetPath('stable', '1.2.0'), 'stable/1.2.0.tar.gz');
  assert.equal(deltaTargetPath('beta', '1.0.0-rc.1', '1.0.0'), 'deltas/beta/1.0.0-rc.1_1.0.0.pwdelta');
  assert.ok(isDeltaTargetPath(deltaTargetPath('stable', '1.0.0', '2.0.0')));
  assert.ok(!isDeltaTargetPath(releaseTargetPath('stable', '2.0.0')) && !isDeltaTargetPath(MOVED_TARGET_PATH) && !isDeltaTargetPath('deltasx/a'));
  // A TUF `*` matches one path segment: the delegation pattern has the delta path's shape.
  assert.equal(DELTAS_PATH_PATTERN.split('/').length, deltaTargetPath('stable', '1.0.0', '2.0.0').split('/').length);
  for (const path of [releaseTargetPath('stable', '1.2.0'), deltaTargetPath('stable', '1.0.0', '2.0.0'), MOVED_TARGET_PATH]) {
    const file = targetFilePath(path, sha);
    assert.equal(parseTargetFilePath(file), sha, file);
    const url = new URL(targetUrl('http://h:1', 'acme', path, sha));
    assert.match(url.pathname, routeRe(ROUTES.target));
    assert.equal(decodeURIComponent(url.pathname.slice('/v1/products/acme/targets/'.length)), file);
  }
  assert.equal(targetFilePath('stable/1.2.0.tar.gz', sha), `stable/${sha}.1.2.0.tar.gz`);
  assert.equal(targetFilePath('moved.json', sha), `${sha}.moved.json`);
  assert.equal(targetUrl('http://h', 'acme', 'stable/1.0.0+b.1.tar.gz', sha), `http://h/v1/products/acme/targets/stable/${sha}.1.0.0%2Bb.1.tar.gz`);
  for (const bad of ['stable/1.2.0.tar.gz', `stable/${sha.toUpperCase()}.1.2.0.tar.gz`, `stable/${sha}.`, `${sha}.x/y`, sha.slice(2) + '.x']) {
    assert.equal(parseTargetFilePath(bad), undefined, bad);
  }
});

test('the signed release field: names exactly the release, with a usable tree hash, size and file count', () => {
  const expect = { product: 'acme', channel: 'stable', version: '1.2.0' };
  const good = { kind: 'full', ...expect, treeHash: 'c'.repeat(64), treeBytes: 10, treeFiles: 2 };
  assert.deepEqual(parseReleaseCustom({ patchwire: good }, expect), { ok: true, patchwire: good });
  const cases: Array<[unknown, RegExp]> = [
    [{}, /no patchwire custom field/],
    [null, /no patchwire custom field/],
    [{ patchwire: 'full' }, /no patchwire custom field/],
    [{ patchwire: { ...good, kind: 'delta' } }, /its kind is delta/],
    [{ patchwire: { ...good, product: 'other' } }, /signed for other\/stable, not acme\/stable/],
    [{ patchwire: { ...good, channel: 'beta' } }, /signed for acme\/beta/],
    [{ patchwire: { ...good, version: '1.1.0' } }, /signed as version 1\.1\.0, not 1\.2\.0/],
    [{ patchwire: { ...good, treeHash: 'C'.repeat(64) } }, /treeHash is malformed/],
    [{ patchwire: { ...good, treeBytes: -1 } }, /treeBytes is malformed/],
    [{ patchwire: { ...good, treeBytes: 1.5 } }, /treeBytes is malformed/],
    [{ patchwire: { ...good, treeFiles: '2' } }, /treeFiles is malformed/],
  ];
  for (const [custom, problem] of cases) {
    const parsed = parseReleaseCustom(custom, expect);
    assert.ok(!parsed.ok, JSON.stringify(custom));
    assert.match(parsed.problem, problem);
  }
});

test('http(s) URLs: one check, with rules for a query and for host-only addresses', () => {
  const ok = (text: unknown, rules?: Parameters<typeof parseHttpUrl>[1]) => {
    const r = parseHttpUrl(text, rules);
    assert.ok(r.ok, `${String(text)}: ${r.ok ? '' : r.problem}`);
    return r.base;
  };
  const problem = (text: unknown, rules?: Parameters<typeof parseHttpUrl>[1]) => {
    const r = parseHttpUrl(text, rules);
    return r.ok ? 'ok' : r.problem;
  };
  assert.equal(ok('http://127.0.0.1:8080'), 'http://127.0.0.1:8080');
  assert.equal(ok('https://Updates.Example.com:443//'), 'https://updates.example.com');
  assert.equal(ok(' http://h/base/ '), 'http://h/base');
  assert.equal(ok('http://h:8080/', { path: false }), 'http://h:8080');
  assert.equal(parseHttpUrl('https://hooks.example.com/x?token=1', { query: true }).ok, true);
  assert.equal(problem('http://h/x', { path: false }), 'path');
  for (const [text, why] of [
    ['ftp://h', 'not-http'], ['file:///etc/passwd', 'not-http'], ['javascript:alert(1)', 'not-http'],
    ['not a url', 'not-a-url'], ['', 'not-a-url'], ['h:8080', 'not-http'], [42, 'not-a-url'], [null, 'not-a-url'],
    [`http://h/${'a'.repeat(2048)}`, 'not-a-url'],
    ['http://user:pw@h', 'credentials'], ['http://:pw@h', 'credentials'], ['http://user@h', 'credentials'],
    ['http://h/?x=1', 'query-or-fragment'], ['http://h/?', 'query-or-fragment'], ['http://h#', 'query-or-fragment'], ['http://h/#top', 'query-or-fragment'],
  ] as const) {
    assert.equal(problem(text), why, String(text));
  }
  assert.equal(problem('http://user:pw@h/?x', { query: true }), 'credentials', 'credentials are refused under every rule');
  assert.equal(normaliseServerUrl('http://h:1/'), 'http://h:1');
  assert.equal(normaliseServerUrl('http://h:1/?'), undefined);
});

test('report events: one list', () => {
  assert.deepEqual([...REPORT_EVENTS], ['applied', 'rolled-back', 'failed', 'delta-failed', 'downloading', 'installing']);
  for (const e of REPORT_EVENTS) assert.ok(isReportEvent(e));
  for (const e of ['Applied', 'rollback', '', null]) assert.ok(!isReportEvent(e), String(e));
});

test('MAC prefixes for the device search: any case and separators, normalised as device ids are', () => {
  assert.equal(normaliseMacPrefix('AA:BB:C'), 'aa:bb:c');
  assert.equal(normaliseMacPrefix('aabbc'), 'aa:bb:c');
  assert.equal(normaliseMacPrefix('aa-bb-cc-dd-ee-ff'), 'aa:bb:cc:dd:ee:ff');
  assert.equal(normaliseMacPrefix('0'), '0');
  for (const bad of ['', ':', 'g0', 'aa:bb:cc:dd:ee:ff:00', 'aa bb', 'aa%', 7, null]) assert.equal(normaliseMacPrefix(bad), undefined, String(bad));
});
