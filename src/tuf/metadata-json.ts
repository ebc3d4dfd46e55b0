import type { Metadata } from '@tufjs/models';

/** @tufjs/models' JSONObject (not exported from its index). */
export type JSONObject = Parameters<typeof Metadata.fromJSON>[1];

/** True for a plain JSON object (not an array, not null): the only shape metadata can have. */
export function isJsonObject(value: unknown): value is JSONObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The exact bytes stored and served for a piece of metadata. Snapshot and timestamp pin length
 * and sha256 of these bytes, so they must be produced once and then kept verbatim.
 */
export function serialize(md: { toJSON(): JSONObject }): string {
  return JSON.stringify(md.toJSON());
}

/** @tufjs/models' JSONValue (not exported from its index). */
export type JSONValue = JSONObject[string];
