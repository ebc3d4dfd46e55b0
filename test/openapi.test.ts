/**
 * GET /v1/openapi.json stays true to the server (docs/protocol.md points to it): every route the
 * app registers is in the document with its method and a summary, every operation of the document
 * is a route the app serves, and request bodies are the route's own schemas. A server runs in
 * this process (real HTTP on 127.0.0.1, a real SQLite file), so its route table can be read.
 *
 * When this fails after you added a route: add its line to OPERATIONS in
 * src/server/openapi/operations.ts and its section to docs/protocol.md.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer as startInProcess, type RunningServer } from '../src/server/start.js';
import type { RouteInfo } from '../src/server/app.js';
import { documentedPath, OPENAPI_PATH } from '../src/server/openapi/openapi.js';
import { OPERATIONS, operationKey } from '../src/server/openapi/operations.js';
import { Cleanup } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';

interface Operation { summary?: string; tags?: string[]; security?: unknown[]; requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown>; required?: string[] } }> }; responses?: Record<string, unknown> }
interface OpenApiDocument { openapi: string; info: { title: string }; paths: Record<string, Record<string, Operation>> }

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const FIX = 'add a line for it to OPERATIONS in src/server/openapi/operations.ts (and its section to docs/protocol.md)';

/**
 * What is out of step between the routes an app serves and its document. A HEAD route counts
 * only when OPERATIONS names it: fastify adds a HEAD to every GET by itself.
 */
export function openApiDrift(routes: RouteInfo[], doc: OpenApiDocument, operations: Record<string, string> = OPERATIONS): string[] {
  const problems: string[] = [];
  const served = new Set<string>();
  for (const r of routes) {
    const key = operationKey(r.method, r.url);
    if (r.method === 'HEAD' && !operations[key]) continue;
    served.add(`${r.method.toLowerCase()} ${documentedPath(r.url)}`);
    if (!operations[key]) problems.push(`${key} is served but has no summary in the API description: ${FIX}`);
    if (!doc.paths[documentedPath(r.url)]?.[r.method.toLowerCase()]) problems.push(`${key} is served but missing from ${OPENAPI_PATH}: ${FIX}`);
  }
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops).filter((m) => METHODS.includes(m))) {
      if (!served.has(`${method} ${path}`)) problems.push(`${method.toUpperCase()} ${path} is in ${OPENAPI_PATH} but no such route is served`);
    }
  }
  const routeKeys = new Set(routes.map((r) => operationKey(r.method, r.url)));
  for (const key of Object.keys(operations)) {
    if (!routeKeys.has(key)) problems.push(`OPERATIONS in src/server/openapi/operations.ts names ${key}, which the server does not serve: fix its path or remove the line`);
  }
  return problems;
}

const suite = Cleanup.forSuite();
let server: RunningServer;
let routes: RouteInfo[];
let doc: OpenApiDocument;
before(async () => {
  const root = await tempDir(suite, 'patchwire-openapi-');
  server = await startInProcess({ dataDir: join(root, 'data'), host: '127.0.0.1', port: 0, token: 'openapi-admin-token', logLevel: 'silent', print: () => {} });
  routes = (server.app as unknown as { routeTable: RouteInfo[] }).routeTable;
  const res = await fetch(`${server.url}${OPENAPI_PATH}`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  doc = (await res.json()) as OpenApiDocument;
});
after(async () => {
  await server?.close();
  await suite.run();
});

test('every route the server registers is in the document with its method, and every documented operation is served', () => {
  assert.match(doc.openapi, /^3\./);
  assert.equal(doc.info.title, 'patchwire API');
  assert.deepEqual(openApiDrift(routes, doc), []);
  // The sweep saw the whole API, not an empty table.
  for (const key of ['POST /v1/check', 'GET /v1/admin/status', 'PUT /v1/mirror/schedules', 'HEAD /v1/products/:product/targets/*', 'GET /metrics']) {
    assert.ok(routes.some((r) => operationKey(r.method, r.url) === key), key);
  }
});

test('the in-step check names a route served without a line in OPERATIONS, and a line without a route', () => {
  const added: RouteInfo = { method: 'POST', url: '/v1/admin/products/:product/rollout/pause' };
  const problems = openApiDrift([...routes, added], doc);
  assert.ok(problems.some((p) => p.startsWith('POST /v1/admin/products/:product/rollout/pause is served but has no summary') && p.includes('src/server/openapi/operations.ts')), problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith('POST /v1/admin/products/:product/rollout/pause is served but missing from /v1/openapi.json')), problems.join('\n'));
  const stale = openApiDrift(routes, doc, { ...OPERATIONS, 'GET /v1/admin/gone': 'a route that was removed' });
  assert.deepEqual(stale, ['OPERATIONS in src/server/openapi/operations.ts names GET /v1/admin/gone, which the server does not serve: fix its path or remove the line']);
});

test('operations carry the routes\' own schemas, their surface\'s token and a tag', () => {
  const check = doc.paths['/v1/check']!.post!;
  const body = check.requestBody!.content['application/json']!.schema;
  assert.deepEqual(body.required, ['deviceId', 'product', 'channel'], 'the body schema POST /v1/check validates with');
  assert.ok(body.properties && 'nonce' in body.properties);
  assert.ok(check.responses && '200' in check.responses, 'its response schema');
  assert.deepEqual(check.security, [{ deviceToken: [] }]);
  assert.deepEqual(doc.paths['/v1/admin/status']!.get!.security, [{ adminToken: [] }]);
  assert.deepEqual(doc.paths['/v1/mirror/catalog']!.get!.security, [{ mirrorToken: [] }]);
  assert.deepEqual(doc.paths['/metrics']!.get!.security, [{ metricsToken: [] }, {}]);
  assert.equal(doc.paths['/v1/products/{product}/targets/{path}']!.get!.tags?.[0], 'repository');
  const publish = doc.paths['/v1/admin/products/{product}/releases']!.post!;
  assert.ok(publish.requestBody?.content['multipart/form-data'], 'the publish upload is described as multipart');
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) assert.ok(op.summary && op.tags?.length, `${method} ${path} has a summary and a tag`);
  }
});

test('docs/protocol.md points to the document', async () => {
  const protocol = await readFile(new URL('../docs/protocol.md', import.meta.url), 'utf8');
  assert.ok(protocol.includes('GET /v1/openapi.json'), 'docs/protocol.md names GET /v1/openapi.json');
});
