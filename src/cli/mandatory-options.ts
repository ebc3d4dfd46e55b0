import type { Command } from 'commander';
import { optionTerm } from './help-terms.js';

/**
 * Commander checks required options before unknown ones, so `check --verison` said "required
 * option '--dir' not specified" and never named the typo. This makes every required option of
 * every command optional to commander and checks it in a preAction hook instead, which runs
 * after commander refused unknown options; the message stays commander's own. Help text marks
 * each one "(required)".
 */
export function deferMandatoryOptions(program: Command): void {
  const walk = (cmd: Command): void => {
    const required = cmd.options.filter((o) => o.mandatory);
    for (const o of required) {
      o.makeOptionMandatory(false);
      if (!o.description.endsWith('(required)')) o.description = `${o.description} (required)`;
    }
    if (required.length) {
      cmd.hook('preAction', (_self, action) => {
        if (action !== cmd) return;
        for (const o of required) {
          if (cmd.getOptionValue(o.attributeName()) === undefined) {
            cmd.error(`error: required option '${optionTerm(o)}' not specified`, { code: 'commander.missingMandatoryOptionValue', exitCode: 2 });
          }
        }
      });
    }
    for (const sub of cmd.commands) walk(sub);
  };
  walk(program);
}
