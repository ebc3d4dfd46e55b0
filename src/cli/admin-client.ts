import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { isName } from '../protocol/names.js';
import { parseHttpUrl } from '../protocol/http-url.js';
import { ADMIN_PREFIX } from '../protocol/urls.js';

export interface AdminTarget {
  server: string;
  token: string;
}

/** Reads `--server` and `--token` (or PATCHWIRE_TOKEN); a missing or malformed one is bad usage. */
export function adminTarget(opts: { server?: string; token?: string }): AdminTarget {
  const token = opts.token ?? process.env.PATCHWIRE_TOKEN;
  if (!opts.server) throw new CliError('--server URL is required (the patchwire server, e.g. http://127.0.0.1:8080)');
  if (!token) throw new CliError('an admin token is required: pass --token or set PATCHWIRE_TOKEN (the server printed it on first start)');
  const url = parseHttpUrl(opts.server);
  if (!url.ok) {
    throw new CliError(url.problem === 'not-a-url'
      ? `--server '${opts.server}' is not a URL; give e.g. http://127.0.0.1:8080`
      : `--server '${opts.server}' must be an http(s) URL without query, fragment or credentials`);
  }
  return { server: url.base, token };
}

/**
 * Calls the admin API. A 4xx answer is bad input (exit 2) and a 5xx or network failure is a
 * failure (exit 1); either way the server's own message is shown.
 */
export async function adminRequest<T>(t: AdminTarget, method: string, path: string, body?: unknown | FormData): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${t.token}` };
  let payload: string | FormData | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  let res: Response;
  try {
    res = await fetch(`${t.server}${ADMIN_PREFIX}${path}`, { method, headers, body: payload });
  } catch (err) {
    throw new CliError(`cannot reach ${t.server} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}); is the server running?`, 1, { cause: err, code: 'PW_UNREACHABLE' });
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    throw new CliError(`${t.server} answered ${res.status} with a body that is not JSON; is it a patchwire server?`, 1);
  }
  if (!res.ok) {
    const e = json as { code?: string; message?: string } | undefined;
    throw new CliError(`${e?.message ?? `HTTP ${res.status}`}${e?.code ? ` [${e.code}]` : ''}`, res.status >= 500 ? 1 : 2,
      e?.code ? { code: e.code } : undefined);
  }
  return json as T;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** `--server` and `--token`, the same on every command that talks to the admin API. */
export function withAdminOptions(cmd: Command, server = 'patchwire server URL, e.g. http://127.0.0.1:8080 (required)'): Command {
  return cmd
    .option('--server <url>', server)
    .option('--token <token>', 'admin token (default: $PATCHWIRE_TOKEN)');
}

/** A `--product` or `--channel` value that is not a name is bad input. */
export function checkName(flag: string, value: string | undefined): void {
  if (value !== undefined && !isName(value)) throw new CliError(`${flag} '${value}' is not a valid name: use 1-64 of a-z 0-9 . _ - starting with a letter or digit`);
}

/** Prints rows as aligned columns, the first row being the header. */
export function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
}
