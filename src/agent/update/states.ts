import { checkState } from './check-state.js';
import type { UpdateContext } from './context.js';
import { cleanup, done, report } from './finish-states.js';
import { deltaState, download, health, rollbackState, stage, switchState, verify } from './install-states.js';
import type { StateHandler, UpdateStateName } from './machine.js';

/** The handler of every state; the wiring between them is TRANSITIONS in machine.ts. */
export const STATE_HANDLERS: Readonly<Record<UpdateStateName, StateHandler<UpdateContext>>> = {
  check: checkState,
  delta: deltaState,
  download,
  verify,
  stage,
  switch: switchState,
  health,
  rollback: rollbackState,
  report,
  cleanup,
  done,
};
