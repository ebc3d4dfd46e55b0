/**
 * The agent's update flow as an explicit state machine (Mender style): each state does
 * its work and returns ONE event; all wiring is the transition table below, one row per line.
 *
 * Adding a state: add its name to UPDATE_STATES, its handler to STATE_HANDLERS in states.ts, its
 * rows to TRANSITIONS (re-pointing the one row that should lead into it), and, when it saves the
 * record, its resume target to RESUME_AT; then the same rows to the table in docs/architecture.md
 * (test/architecture-doc.test.ts compares the two). Nothing else.
 *
 * Runner rules (runMachine):
 * - every state except `check` saves the update record with its own name FIRST, then acts;
 * - a handler's throw is its `failure` event (the error is kept in the record's `failure`), or
 *   its `fallback` event when the state has a `fallback` row: a failure of that state is not a
 *   failure of the update, which goes on another way (a failed delta: the full archive);
 * - a (state, event) pair with no row stops the run with that error, leaving the record saved:
 *   the next start resumes it (used for the states after the switch, which must not be skipped);
 * - `done` is terminal.
 */

/** Every state of the update machine. */
export const UPDATE_STATES = ['check', 'delta', 'download', 'verify', 'stage', 'switch', 'health', 'rollback', 'report', 'cleanup', 'done'] as const;
export type UpdateStateName = (typeof UPDATE_STATES)[number];

export type UpdateEvent = 'success' | 'failure' | 'nothing-to-do' | 'retry' | 'fallback';

/**
 * The names a state may save in `.patchwire/update.json`: a frozen on-disk format (never rename;
 * only add). Documented in docs/architecture.md.
 */
export const SAVED_STATES = ['download', 'verify', 'stage', 'switch', 'health', 'rollback', 'report', 'cleanup', 'done', 'delta'] as const;
export type SavedState = (typeof SAVED_STATES)[number];

export const TERMINAL_STATE: UpdateStateName = 'done';

// prettier-ignore
export const TRANSITIONS: ReadonlyArray<readonly [UpdateStateName, UpdateEvent, UpdateStateName]> = [
  // from        event            to
  ['check',     'success',       'delta'],     // a higher, verified release is offered
  ['delta',     'success',       'stage'],     // the delta rebuilt versions/<to>; stage finds it intact
  ['delta',     'nothing-to-do', 'download'],  // no usable delta: the full archive
  ['delta',     'fallback',      'download'],  // the delta failed: not a failed update, the full archive follows
  ['check',     'nothing-to-do', 'done'],      // up to date, or the offer is a version rolled back from
  ['check',     'failure',       'done'],      // server, network or TUF refusal: nothing changed
  ['download',  'success',       'verify'],
  ['download',  'retry',         'cleanup'],   // network or server error: the partial file stays for a Range resume
  ['download',  'failure',       'report'],    // the server sends more than the signed length
  ['verify',    'success',       'stage'],
  ['verify',    'failure',       'report'],    // wrong length or sha256: the file is deleted
  ['stage',     'success',       'switch'],
  ['stage',     'failure',       'report'],    // bad tree hash, unsafe or corrupt archive, full disk
  ['switch',    'success',       'health'],
  ['switch',    'failure',       'rollback'],  // make sure `current` is back at the old version
  ['health',    'success',       'report'],
  ['health',    'failure',       'rollback'],  // the health command failed or timed out
  ['rollback',  'success',       'report'],
  ['report',    'success',       'cleanup'],
  ['cleanup',   'success',       'done'],
];

/**
 * Where a run resumes from a saved state (on every start). The states before the switch redo
 * from `download` (which resumes the file by Range and reuses a complete one); the states from
 * the switch on are idempotent and redo themselves.
 */
export const RESUME_AT: Readonly<Record<SavedState, UpdateStateName>> = {
  delta: 'delta',
  download: 'download',
  verify: 'download',
  stage: 'download',
  switch: 'switch',
  health: 'health',
  rollback: 'rollback',
  report: 'report',
  cleanup: 'cleanup',
  done: 'done',
};

/** The next state for (state, event), or undefined when the table has no row. */
export function nextState(from: UpdateStateName, event: UpdateEvent): UpdateStateName | undefined {
  return TRANSITIONS.find(([f, e]) => f === from && e === event)?.[2];
}

export function isSavedState(s: string): s is SavedState {
  return (SAVED_STATES as readonly string[]).includes(s);
}

export type StateHandler<C> = (ctx: C) => Promise<UpdateEvent>;

export interface MachineHooks {
  /** Saves the machine's state before the state acts; returns false when there is nothing to save (no update yet). */
  persist: (state: UpdateStateName) => Promise<void>;
  /** Called when a state's event is `failure` or `retry` with the error (handlers may also report errors themselves); not for `fallback`. */
  onFailure: (state: UpdateStateName, event: 'failure' | 'retry', error: unknown) => void;
  /** Called as each state is entered, after the save and before it acts (progress reports, progress.ts); must not throw. */
  enter?: (state: UpdateStateName) => void;
  /** Fault injection (tests): called at the start of each state, after the save. A throw is the state's `failure`. */
  faults?: (state: string) => void | Promise<void>;
  /** Aborting stops the run at once, like a kill: no further state, no cleanup. */
  signal?: AbortSignal;
}

/** Thrown when a state returns an event the table has no row for and there is no error to rethrow. */
export class MachineError extends Error {
  override name = 'MachineError';
}

/**
 * Runs the machine from `start` until `done`. Returns the chain of states entered. Throws the
 * error of a state whose event has no row (the saved record then resumes it on the next start),
 * and rethrows at once when `signal` aborts.
 */
export async function runMachine<C extends { error?: unknown }>(
  start: UpdateStateName,
  handlers: Readonly<Record<UpdateStateName, StateHandler<C>>>,
  ctx: C,
  hooks: MachineHooks,
  chain: string[] = [],
): Promise<string[]> {
  let state = start;
  for (let steps = 0; ; steps++) {
    if (steps > 100) throw new MachineError(`the update machine did not reach "done" (states: ${chain.join(' -> ')}): a bug in the transition table`);
    chain.push(state);
    let event: UpdateEvent;
    try {
      hooks.signal?.throwIfAborted();
      await hooks.persist(state);
      hooks.enter?.(state);
      await hooks.faults?.(state);
      hooks.signal?.throwIfAborted();
      event = await handlers[state](ctx);
    } catch (err) {
      if (hooks.signal?.aborted) throw err;
      ctx.error = err;
      event = nextState(state, 'fallback') === undefined ? 'failure' : 'fallback';
    }
    if (event === 'failure' || event === 'retry') hooks.onFailure(state, event, ctx.error);
    if (state === TERMINAL_STATE) {
      if (event === 'failure') throw ctx.error;
      return chain;
    }
    const next = nextState(state, event);
    if (next === undefined) {
      throw ctx.error ?? new MachineError(`the update machine has no transition from "${state}" on "${event}"`);
    }
    state = next;
  }
}
