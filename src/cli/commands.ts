import type { Command } from 'commander';
import { register as serve } from './serve.js';
import { register as keygen } from './keygen.js';
import { register as product } from './product.js';
import { register as publish } from './publish.js';
import { register as schedule } from './schedule.js';
import { register as move } from './move.js';
import { register as devices } from './devices.js';
import { register as status } from './status.js';
import { register as init } from './init.js';
import { register as check } from './check.js';
import { register as agent } from './agent.js';
import { register as rollback } from './rollback.js';
import { register as retry } from './retry.js';
import { register as reconcile } from './reconcile.js';
import { register as products } from './products.js';
import { register as releases } from './releases.js';
import { register as release } from './release.js';
import { register as mirrors } from './mirrors.js';
import { register as rollout } from './rollout.js';

/** Every command registers itself from its own file (one file per command), in help order. */
export const commands: Array<(program: Command) => void> = [
  serve, keygen, product, products, publish, rollout, releases, release, schedule, move, devices, status, mirrors, reconcile, init, check, agent,
  rollback, retry,
];
