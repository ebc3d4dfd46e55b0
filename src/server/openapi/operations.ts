/**
 * One line per route of the HTTP API: what the OpenAPI document (GET /v1/openapi.json) says it
 * does. The request and response schemas come from the routes themselves; this table adds the
 * summary. test/openapi.test.ts fails when a route is served without a line here, or a line
 * names no route: a new route gets its line here, with its full path as fastify registers it
 * (`:param`, `*`), and its section in docs/protocol.md.
 */
export const OPERATIONS: Record<string, string> = {
  'GET /healthz': 'Liveness: answers while the process serves',
  'GET /metrics': 'Prometheus metrics (text format); needs the metrics token when the server was started with --metrics-token',
  'GET /v1/openapi.json': 'This document',

  'POST /v1/auth': 'A device signs in with its key and gets a short-lived device token',
  'POST /v1/check': 'A device asks whether a higher release is available (device token)',
  'POST /v1/report': 'A device reports the outcome of an update (device token)',
  'GET /v1/events': 'A device holds an event stream open (server-sent events) and hears of new releases (device token)',
  'GET /v1/products/:product/channels': 'The channels a device of the product may check on',
  'GET /v1/products/:product/tuf/:file': 'TUF metadata of the product: N.root.json, timestamp.json, N.snapshot.json, N.targets.json, N.deltas.json',
  'GET /v1/products/:product/targets/*': 'A target\'s bytes by content hash (<dir>/<sha256>.<name>); Range, If-None-Match',
  'HEAD /v1/products/:product/targets/*': 'A target\'s length and ETag without its bytes',

  'GET /v1/admin/online-keys': 'Public keys of this server\'s online keys (snapshot, timestamp, deltas)',
  'GET /v1/admin/products': 'The products',
  'POST /v1/admin/products': 'Create a product from its signed root and targets v1',
  'GET /v1/admin/products/:product': 'A product: its current signed targets, releases and moved notice',
  'GET /v1/admin/products/:product/releases': 'A product\'s releases in publication order (?channel=)',
  'POST /v1/admin/products/:product/releases': 'Publish a release: multipart metadata (signed targets) then archive',
  'POST /v1/admin/products/:product/yank': 'Stop offering a release',
  'PUT /v1/admin/products/:product/schedule': 'Set the next planned release time of a channel',
  'POST /v1/admin/products/:product/moved': 'Publish a signed "this server has moved" notice',
  'PUT /v1/admin/products/:product/admission': 'How new devices of the product are admitted: auto or approve',
  'GET /v1/admin/devices': 'One page of the device registry (?product=&after=&limit=)',
  'GET /v1/admin/products/:product/devices/:deviceId': 'One device with its history (progress and outcome reports, newest first)',
  'GET /v1/admin/products/:product/devices/:deviceId/reports': 'A device\'s outcome reports (applied, failed, rolled-back, delta-failed)',
  'DELETE /v1/admin/products/:product/devices/:deviceId': 'Remove a device and its history',
  'POST /v1/admin/products/:product/devices/:deviceId/accept': 'Accept a pending device, or re-bind it to its waiting key',
  'POST /v1/admin/products/:product/devices/:deviceId/reject': 'Reject a device, or drop its waiting key',
  'PUT /v1/admin/products/:product/preauthorized/:deviceId': 'Preauthorize a MAC (optionally with its key)',
  'GET /v1/admin/mirrors': 'The mirrors that announced themselves, and how their last sync went',
  'DELETE /v1/admin/mirrors': 'Forget a mirror (?url=)',
  'POST /v1/admin/mirrors/approve': 'Approve a pending mirror (?url=)',
  'POST /v1/admin/reconcile': 'Consolidate the approved mirrors now',
  'POST /v1/admin/reconcile/jobs': 'Start a consolidation job, or join the one running; answers at once with its id',
  'GET /v1/admin/reconcile/jobs/:id': 'A consolidation job\'s progress: each mirror\'s phase, pages and records, errors, and the result when done',
  'GET /v1/admin/status': 'Fleet summary: devices per version, mirrors, alarms, runtime (?product=)',
  'GET /v1/admin/runtime': 'This process\'s event-loop delay and memory since the previous read',
  'GET /v1/admin/rollouts': 'The current staged rollout of each channel of a product, with its phase and counts (?product=&channel=)',
  'POST /v1/admin/products/:product/rollout/:action': 'Pause, resume, advance or abort the staged rollout of a channel ({ channel })',
  'GET /v1/admin/fleet/history': 'Devices per version over time, from the periodic fleet snapshots (?product=&days=1..366)',

  'GET /': 'The web dashboard\'s page (HTML; its script and styles come from /assets)',
  'GET /assets/:file': 'A file of the web dashboard (bundled at build time; immutable)',
  'POST /v1/dashboard/session': 'Dashboard sign-in with the admin token: sets the session cookie, answers the CSRF token',
  'GET /v1/dashboard/session': 'The dashboard session of this cookie: its expiry and CSRF token',
  'DELETE /v1/dashboard/session': 'Dashboard sign-out: the session ends on every process of the database',

  // Issue 12: the hawkBit DDI for SWUpdate (docs/compat.md); TargetToken or GatewayToken on each.
  'GET /:tenant/controller/v1/:controllerId': 'hawkBit DDI base poll: config.polling.sleep and the links to the offered action and configData',
  'GET /:tenant/controller/v1/:controllerId/deploymentBase/:actionId': 'hawkBit DDI: the offered action (the release\'s .swu)',
  'POST /:tenant/controller/v1/:controllerId/deploymentBase/:actionId/feedback': 'hawkBit DDI: progress and outcome of an action (becomes the device\'s history); answers 200',
  'PUT /:tenant/controller/v1/:controllerId/configData': 'hawkBit DDI: the device\'s attributes',
  'GET /:tenant/controller/v1/:controllerId/cancelAction/:actionId': 'hawkBit DDI: a cancelled action (patchwire cancels none: 404)',
  'POST /:tenant/controller/v1/:controllerId/cancelAction/:actionId/feedback': 'hawkBit DDI: feedback on a cancellation (accepted, nothing recorded)',
  'GET /:tenant/controller/v1/:controllerId/softwaremodules/:actionId/artifacts/:file': 'hawkBit DDI: the action\'s .swu; Range, If-None-Match',
  'HEAD /:tenant/controller/v1/:controllerId/softwaremodules/:actionId/artifacts/:file': 'hawkBit DDI: the .swu\'s length and ETag',
  'POST /v1/admin/products/:product/devices/:deviceId/hawkbit-token': 'A new hawkBit TargetToken for a device ({ channel? }); shown once, the server keeps its hash',
  'POST /v1/admin/products/:product/hawkbit-gateway-token': 'A new hawkBit GatewayToken for the product (the old one stops); shown once',

  'POST /v1/mirror/announce': 'A mirror tells its primary where devices reach it',
  'GET /v1/mirror/catalog': 'Products, releases, metadata versions and schedules to replicate',
  'GET /v1/mirror/devices': 'Device records changed after a cursor (?after=&limit=)',
  'POST /v1/mirror/devices': 'Device records to merge',
  'PUT /v1/mirror/schedules': 'The primary\'s schedules, pushed to a mirror',
  // The Mender client's device API (docs/compat.md, "Mender").
  'POST /api/devices/v1/authentication/auth_requests': 'Mender: a device signs its identity and RSA key (X-MEN-Signature) and gets a token (the raw body)',
  'PUT /api/devices/v1/inventory/device/attributes': 'Mender: the device\'s inventory attributes; device_type names the product (Mender token)',
  'PATCH /api/devices/v1/inventory/device/attributes': 'Mender: as PUT, for clients that fall back to PATCH (Mender token)',
  'POST /api/devices/v2/deployments/device/deployments/next': 'Mender: the deployment for this device (200) or none (204): the native check\'s answer (Mender token)',
  'POST /api/devices/v1/deployments/device/deployments/next': 'Mender: deployments/next, version 1 body (Mender token)',
  'GET /api/devices/v1/deployments/device/deployments/next': 'Mender: deployments/next with ?artifact_name=&device_type= (Mender token)',
  'PUT /api/devices/v1/deployments/device/deployments/:id/status': 'Mender: a deployment status (downloading, installing, success, failure, ...), recorded as the device\'s report (Mender token)',
  'PUT /api/devices/v1/deployments/device/deployments/:id/log': 'Mender: the log of a failed deployment, kept with its failure report (Mender token)',
  'GET /api/devices/v1/download/:product/:version/:file': 'Mender: a release\'s Mender artifact by content hash (<sha256>.mender); Range, If-None-Match',
  'HEAD /api/devices/v1/download/:product/:version/:file': 'Mender: the artifact\'s length and ETag without its bytes',
  'PUT /v1/admin/products/:product/mender': 'The folder Mender devices of the product install into (--mender-dest), or null',
};

/** The key of a route in OPERATIONS. */
export function operationKey(method: string, url: string): string {
  return `${method.toUpperCase()} ${url}`;
}

const query = (properties: Record<string, { type: 'string'; description: string }>, required: string[] = []) => ({ type: 'object', properties, required });

/**
 * What the document says of routes that parse their input by hand (no schema fastify validates
 * with): for the document only; the route's checks are what the server applies.
 */
export const DOC_SCHEMAS: Record<string, { querystring?: unknown; body?: unknown; consumes?: string[] }> = {
  'POST /v1/admin/products/:product/releases': {
    consumes: ['multipart/form-data'],
    body: {
      type: 'object',
      required: ['metadata', 'archive'],
      properties: {
        metadata: { type: 'string', description: 'JSON { channel, version, targets }: the next targets version, signed, adding exactly this release\'s target' },
        archive: { type: 'string', format: 'binary', description: 'The release archive (.tar.gz), after metadata' },
      },
    },
  },
  'GET /v1/admin/products/:product/releases': { querystring: query({ channel: { type: 'string', description: 'Only this channel' } }) },
  'GET /v1/admin/devices': {
    querystring: query({
      product: { type: 'string', description: 'Only this product' },
      after: { type: 'string', description: 'The `next` cursor of the previous page' },
      limit: { type: 'string', description: 'Devices per page (default 500, at most 1000)' },
    }),
  },
  'DELETE /v1/admin/mirrors': { querystring: query({ url: { type: 'string', description: 'The mirror\'s URL as announced' } }, ['url']) },
  'POST /v1/admin/mirrors/approve': { querystring: query({ url: { type: 'string', description: 'The mirror\'s URL as announced' } }, ['url']) },
  'GET /v1/admin/status': { querystring: query({ product: { type: 'string', description: 'Only this product' } }) },
  'GET /v1/mirror/devices': {
    querystring: query({
      after: { type: 'string', description: 'The `next` cursor of the previous page (absent: from the start)' },
      limit: { type: 'string', description: 'Records per page (default and most 5000)' },
    }),
  },
};
