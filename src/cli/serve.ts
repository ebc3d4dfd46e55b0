import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { parseDuration } from '../protocol/duration.js';

interface Opts {
  data: string; port: string; host: string; db?: string; store?: string; publicUrl?: string;
  upstream?: string; upstreamToken?: string; timestampExpiry: string; maxUpload: string; logLevel: string;
}

function port(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new CliError(`--port '${text}' is not a port number (0-65535)`);
  return n;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the patchwire server (embedded default: SQLite and artifacts under --data)')
    .option('--data <dir>', 'data folder (database, artifacts, online keys)', './data')
    .option('--port <port>', 'TCP port', '8080')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--db <url>', 'database: sqlite:PATH (default: <data>/patchwire.db)')
    .option('--store <url>', 'artifact store: file:PATH (default: <data>/artifacts)')
    .option('--public-url <url>', 'the URL devices reach this server at (default: http://host:port)')
    .option('--upstream <url>', 'run as a mirror of this primary (not built yet)')
    .option('--upstream-token <token>', 'the primary\'s mirror token (not built yet)')
    .option('--timestamp-expiry <duration>', 'lifetime of signed timestamp metadata; re-signed at half', '1d')
    .option('--max-upload <bytes>', 'largest release archive accepted', String(1024 ** 3))
    .option('--log-level <level>', 'fatal, error, warn, info, debug', 'info')
    .action(async (o: Opts) => {
      if (o.upstream || o.upstreamToken) throw new CliError('mirror mode (--upstream) is not built yet; run without it for a primary');
      const timestampExpirySeconds = parseDuration(o.timestampExpiry);
      if (!timestampExpirySeconds) throw new CliError(`--timestamp-expiry '${o.timestampExpiry}' is not a duration such as 1d or 12h`);
      const maxUploadBytes = Number(o.maxUpload);
      if (!Number.isSafeInteger(maxUploadBytes) || maxUploadBytes <= 0) throw new CliError(`--max-upload '${o.maxUpload}' is not a byte count`);
      if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(o.logLevel)) throw new CliError(`--log-level '${o.logLevel}' is not one of fatal, error, warn, info, debug`);
      if (o.publicUrl && !/^https?:\/\/[^/?#]+\/?$/.test(o.publicUrl)) throw new CliError(`--public-url '${o.publicUrl}' must be http(s)://host[:port]`);
      const { startServer, ServerConfigError } = await import('../server/start.js');
      let server;
      try {
        server = await startServer({
          dataDir: o.data, host: o.host, port: port(o.port), db: o.db, artifactStore: o.store,
          publicUrl: o.publicUrl?.replace(/\/$/, ''), token: process.env.PATCHWIRE_TOKEN || undefined,
          timestampExpirySeconds, maxUploadBytes, logLevel: o.logLevel,
        });
      } catch (err) {
        if (err instanceof ServerConfigError) throw new CliError(err.message, 2, { cause: err });
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new CliError(`port ${o.port} on ${o.host} is in use; pick another --port`, 1, { cause: err });
        throw err;
      }
      process.stdout.write(`patchwire: listening on ${server.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => { void server.close().then(resolve); };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });
}
