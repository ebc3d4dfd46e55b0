import { sql, type Kysely } from 'kysely';
import type { RolloutOutcomes, RolloutRecord } from '../store.js';
import type { RolloutState } from '../../protocol/rollout.js';
import type { RolloutsTable, SqliteSchema } from './sqlite-schema.js';

/**
 * The rollout queries (issue 11): the same kysely in SQLite and PostgreSQL, called by both stores
 * (as shared-queries.ts). Times are epoch milliseconds in both schemas.
 */
type Db = Kysely<SqliteSchema>;

const toRollout = (r: RolloutsTable): RolloutRecord => ({
  product: r.product,
  channel: r.channel,
  version: r.version,
  phases: JSON.parse(r.phases) as number[],
  phase: Number(r.phase),
  state: r.state as RolloutState,
  every: r.every_seconds === null ? null : Number(r.every_seconds),
  haltAt: r.halt_at === null ? null : Number(r.halt_at),
  minDevices: Number(r.min_devices),
  phaseStartedAt: new Date(Number(r.phase_started_at)),
  updatedAt: new Date(Number(r.updated_at)),
});

export async function putRollout(db: Db, r: RolloutRecord): Promise<void> {
  const set = {
    phases: JSON.stringify(r.phases), phase: r.phase, state: r.state, every_seconds: r.every, halt_at: r.haltAt,
    min_devices: r.minDevices, phase_started_at: r.phaseStartedAt.getTime(), updated_at: r.updatedAt.getTime(),
  };
  await db.insertInto('rollouts').values({ product: r.product, channel: r.channel, version: r.version, ...set })
    .onConflict((oc) => oc.columns(['product', 'channel', 'version']).doUpdateSet(set)).execute();
}

export async function listRollouts(db: Db, product?: string): Promise<RolloutRecord[]> {
  let q = db.selectFrom('rollouts').selectAll();
  if (product !== undefined) q = q.where('product', '=', product);
  return (await q.orderBy('product').orderBy('channel').orderBy('updated_at').execute()).map(toRollout);
}

export async function countRolloutOutcomes(db: Db, product: string, channel: string, version: string): Promise<RolloutOutcomes> {
  // Semver has no LIKE wildcards (% and _), so the version goes into the pattern as it is.
  const row = await db.selectFrom('reports')
    .select([
      sql<number>`count(distinct device_id)`.as('attempted'),
      sql<number>`count(distinct case when event = 'applied' then device_id end)`.as('applied'),
      sql<number>`count(distinct case when event = 'failed' then device_id end)`.as('failed'),
      sql<number>`count(distinct case when event = 'rolled-back' then device_id end)`.as('rolled_back'),
      sql<number>`count(distinct case when event <> 'applied' then device_id end)`.as('failing'),
    ])
    .where('product', '=', product).where('channel', '=', channel)
    .where((eb) => eb.or([
      eb.and([eb('event', '=', 'applied'), eb('version', '=', version)]),
      eb.and([eb('event', '=', 'rolled-back'), eb.or([eb('to_version', '=', version), eb('previous_version', '=', version)])]),
      // Agents since device history name the release (to_version); older ones only in the detail.
      eb.and([eb('event', '=', 'failed'), eb.or([
        eb('to_version', '=', version),
        eb('detail', 'like', `update to ${version} failed%`), eb('detail', 'like', `first install: update to ${version} failed%`),
      ])]),
    ]))
    .executeTakeFirst();
  return {
    attempted: Number(row?.attempted ?? 0), applied: Number(row?.applied ?? 0), failed: Number(row?.failed ?? 0),
    rolledBack: Number(row?.rolled_back ?? 0), failing: Number(row?.failing ?? 0),
  };
}
