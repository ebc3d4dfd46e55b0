import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { printJson } from './admin-client.js';

export function register(program: Command): void {
  program
    .command('keygen')
    .description("create a publisher key (signs a product's TUF root and targets; keep it offline)")
    .requiredOption('--out <file>', 'where to write the key file (mode 0600; never overwritten)')
    .option('--json', 'print { file, keyid } as JSON')
    .action(async (o: { out: string; json?: boolean }) => {
      const { generateKeyPair, writeKeyFile, KeyFileError } = await import('../tuf/keys.js');
      const pair = generateKeyPair();
      try {
        await writeKeyFile(o.out, pair);
      } catch (err) {
        if (err instanceof KeyFileError) throw new CliError(err.message, 2, { cause: err });
        throw err;
      }
      if (o.json) printJson({ file: o.out, keyid: pair.keyid });
      else process.stdout.write(`wrote ${o.out} (key id ${pair.keyid})\n`);
    });
}
