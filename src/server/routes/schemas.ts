import { NAME_RE } from '../../protocol/names.js';
import { REPORT_EVENTS } from '../../protocol/wire.js';

/** JSON schemas of API v1 bodies (docs/protocol.md describes the same fields). */
export const name = { type: 'string', pattern: NAME_RE.source } as const;
const version = { type: 'string', minLength: 1, maxLength: 128 } as const;
const nullableVersion = { anyOf: [version, { type: 'null' }] } as const;

export const checkBody = {
  type: 'object',
  required: ['deviceId', 'product', 'channel'],
  properties: {
    deviceId: { type: 'string', maxLength: 64 }, product: name, channel: name, version: nullableVersion,
    installId: { type: 'string', pattern: '^[0-9a-f]{16}$' },
    nonce: { type: 'string', pattern: '^[0-9a-f]{32}$' },
    deferred: { type: 'boolean' },
  },
} as const;

export const eventsQuery = {
  type: 'object',
  required: ['deviceId', 'product', 'channel'],
  properties: { deviceId: { type: 'string', maxLength: 64 }, product: name, channel: name },
} as const;

export const authBody = {
  type: 'object',
  required: ['deviceId', 'product', 'channel', 'publicKey', 'time', 'signature'],
  properties: {
    deviceId: { type: 'string', maxLength: 64 }, product: name, channel: name,
    publicKey: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    time: { type: 'string', maxLength: 64, pattern: '^[0-9T:.Z+-]+$' },
    installId: { type: 'string', pattern: '^[0-9a-f]{16}$' },
    signature: { type: 'string', pattern: '^[0-9a-f]{128}$' },
  },
} as const;

export const reportBody = {
  type: 'object',
  required: ['deviceId', 'product', 'channel', 'event', 'version', 'previousVersion'],
  properties: {
    deviceId: { type: 'string', maxLength: 64 },
    product: name,
    channel: name,
    event: { type: 'string', enum: REPORT_EVENTS },
    version: nullableVersion,
    previousVersion: nullableVersion,
    detail: { type: 'string', maxLength: 1000 },
    toVersion: nullableVersion,
    state: name,
  },
} as const;

const nullableString = { type: ['string', 'null'] } as const;

/** The signed block of a check answer (src/protocol/check-answer.ts); every field listed, or fastify drops it. */
const signedCheckEnvelope = {
  type: 'object',
  properties: {
    signed: {
      type: 'object',
      properties: {
        _type: { type: 'string' }, deviceId: { type: 'string' }, product: { type: 'string' }, channel: { type: 'string' },
        nonce: { type: 'string' }, status: { type: 'string' }, latest: nullableString,
        release: { type: ['object', 'null'], properties: { version: { type: 'string' }, target: { type: 'string' } } },
        rollout: { type: 'object', properties: { version: { type: 'string' }, opensAt: nullableString } },
        serverTime: { type: 'string' }, expires: { type: 'string' },
        timestamp: { type: 'object', properties: { version: { type: 'integer' }, expires: { type: 'string' } } },
      },
    },
    signatures: { type: 'array', items: { type: 'object', properties: { keyid: { type: 'string' }, sig: { type: 'string' } } } },
  },
} as const;

/** Response schema: lets fastify serialise the hot check answer without JSON.stringify's reflection. */
export const checkResponse = {
  200: {
    type: 'object',
    properties: {
      status: { type: 'string' },
      product: { type: 'string' },
      channel: { type: 'string' },
      latest: nullableString,
      release: {
        type: ['object', 'null'],
        properties: {
          version: { type: 'string' }, target: { type: 'string' }, length: { type: 'integer' }, sha256: { type: 'string' }, kind: { type: 'string' },
          delta: {
            type: ['object', 'null'],
            properties: { from: { type: 'string' }, target: { type: 'string' }, length: { type: 'integer' }, sha256: { type: 'string' } },
          },
        },
      },
      schedule: { type: ['object', 'null'], properties: { at: { type: 'string' }, spreadSeconds: { type: 'integer' } } },
      rollout: { type: ['object', 'null'], properties: { version: { type: 'string' }, opensAt: nullableString, spreadSeconds: { type: 'integer' } } },
      moved: { type: ['object', 'null'], properties: { url: { type: 'string' }, target: { type: 'string' } } },
      serverTime: { type: 'string' },
      warnings: { type: 'array', items: { type: 'string' } },
      signed: signedCheckEnvelope,
    },
  },
} as const;

export const channelsResponse = {
  200: { type: 'object', properties: { product: { type: 'string' }, channels: { type: 'array', items: { type: 'string' } } } },
} as const;

export const createProductBody = {
  type: 'object',
  required: ['product', 'root', 'targets'],
  additionalProperties: false,
  properties: { product: { type: 'string', maxLength: 64 }, root: { type: 'object' }, targets: { type: 'object' }, admission: { type: 'string', enum: ['auto', 'approve'] } },
} as const;

export const scheduleBody = {
  type: 'object',
  required: ['at'],
  additionalProperties: false,
  properties: { channel: name, at: { type: 'string', maxLength: 64 }, spreadSeconds: { type: 'integer', minimum: 0, maximum: 30 * 86400 } },
} as const;

export const movedBody = {
  type: 'object',
  required: ['notice', 'targets'],
  additionalProperties: false,
  properties: { notice: { type: 'string', maxLength: 4096 }, targets: { type: 'object' } },
} as const;

export const yankBody = {
  type: 'object',
  required: ['version'],
  additionalProperties: false,
  properties: { channel: name, version },
} as const;

export const publishMetadata = {
  type: 'object',
  required: ['channel', 'version', 'targets'],
  additionalProperties: false,
  properties: { channel: name, version, targets: { type: 'object' } },
} as const;

export const rolloutActionBody = {
  type: 'object',
  additionalProperties: false,
  properties: { channel: name },
} as const;
