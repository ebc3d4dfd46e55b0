import type { Kysely, Migration } from 'kysely';

/**
 * Mirror approval (issue 9): a primary contacts only the mirrors the operator approved. Every
 * mirror known before this migration becomes `pending` (an announce was all it took, so one of
 * them may be an attacker's URL): approve each with `patchwire mirrors approve URL`, or list it in
 * `serve --mirror-allow`. Also the records the last sync refused, and why. Independent of 0006.
 */
export const migration0007: Migration = {
  async up(db: Kysely<any>): Promise<void> {
    await db.schema.alterTable('mirrors').addColumn('state', 'text', (c) => c.notNull().defaultTo('pending')).execute();
    await db.schema.alterTable('mirrors').addColumn('approved_at', 'integer').execute();
    await db.schema.alterTable('mirrors').addColumn('skipped', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('mirrors').addColumn('skipped_why', 'text').execute();
  },
};
