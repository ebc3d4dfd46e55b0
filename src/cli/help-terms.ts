import type { Command, Option } from 'commander';

/**
 * One metavar per flag in every command's help, as README.md and docs/design.md section 7 write
 * them (`--server URL --token T --product P`); any other value is shown upper-case. Commands
 * declare their options as they like; only help and usage errors show this form.
 */
const METAVARS: Record<string, string> = {
  '--server': 'URL', '--token': 'T', '--product': 'P', '--channel': 'C', '--version': 'V', '--key': 'FILE',
  '--out': 'FILE', '--root-out': 'FILE', '--root': 'FILE', '--to': 'URL', '--dir': 'INSTALL_DIR', '--data': 'DIR',
  '--public-url': 'URL', '--upstream': 'URL', '--alarm-webhook': 'URL', '--mirror-token': 'T', '--upstream-token': 'T', '--metrics-token': 'T',
  '--mirror-allow': 'URL',
};

export function optionTerm(o: Option): string {
  const metavar = o.long ? METAVARS[o.long] : undefined;
  return o.flags.replace(/<([^>]+)>|\[([^\]]+)\]/g, (whole, req?: string, opt?: string) => {
    const name = metavar ?? (req ?? opt ?? '').toUpperCase();
    return whole.startsWith('<') ? `<${name}>` : `[${name}]`;
  });
}

/** Sets the help terms on `program`; commander hands the help configuration down to every command. */
export function useHelpTerms(program: Command): void {
  program.configureHelp({ optionTerm });
}
