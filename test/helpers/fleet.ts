import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, cp, mkdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { runCli, runJson, startServer, type CliResult, type ServerProcess } from './cli.js';
import { Cleanup, type Owner } from './cleanup.js';
import { writeTree } from './files.js';
import { tempDir } from './temp-dir.js';
import { ServerReads, type At } from './server-reads.js';
import type { CheckResult } from '../../src/agent/check.js';

export type { ProductInfo, ReportRow } from './admin-views.js';

export interface FleetOptions {
  /** The admin token of every server the fleet starts, unless `serve` is given another. */
  token: string;
  /** Prefix of the fleet's temporary folder. */
  prefix?: string;
  /** The product made at the first server (default `acme`). */
  product?: string;
  /** The first server: its data folder under the fleet's folder (default `server`), flags, environment. */
  server?: { name?: string; args?: string[]; env?: Record<string, string> };
  /** Published in this order at the first server once the product exists. */
  releases?: Array<[version: string, files: Record<string, string>]>;
}

/**
 * What the end-to-end tests build again and again: a temporary folder, a publisher key, real
 * `patchwire serve` processes, a product and its first releases, agents made with `patchwire
 * init` (and, from ServerReads, what tests read from servers). Methods are fields, so they can
 * be destructured.
 */
export class Fleet extends ServerReads {
  /** The first server; a test that restarts it puts the new process here. */
  server!: ServerProcess;
  /** The product's root metadata file from the first server. */
  rootFile: string;
  readonly key: string;

  private constructor(
    readonly root: string,
    token: string,
    product: string,
    private readonly cleanup: Cleanup,
    private readonly first: NonNullable<FleetOptions['server']> & { name: string },
  ) {
    super(token, product);
    this.key = join(root, 'publisher.key');
    this.rootFile = join(root, `${product}.root.json`);
  }

  protected defaultServer(): string {
    return this.server.url;
  }

  /** Starts a fleet; with `owner` (a test's `t`, or a suite's Cleanup) it is closed with it. */
  static async start(owner: Owner | undefined, opts: FleetOptions): Promise<Fleet> {
    const cleanup = new Cleanup();
    owner?.after(() => cleanup.run());
    try {
      const first = { ...opts.server, name: opts.server?.name ?? 'server' };
      const f = new Fleet(await tempDir(cleanup, opts.prefix ?? 'patchwire-fleet-'), opts.token, opts.product ?? 'acme', cleanup, first);
      const keygen = runCli(['keygen', '--out', f.key]);
      f.server = await f.serve(first.name, first);
      assert.equal((await keygen).code, 0);
      f.rootFile = await f.createProduct({ rootOut: f.rootFile });
      for (const [version, files] of opts.releases ?? []) {
        const p = await f.publish(version, files);
        assert.equal(p.code, 0, p.stderr);
      }
      return f;
    } catch (err) {
      await cleanup.run();
      throw err;
    }
  }

  /**
   * A fleet of its own made from this one as a template, cheaper than starting one: this fleet's
   * first server is stopped (so its database is whole), its folder copied (data, key, root file,
   * agents), and the copy's first server started. Agents copied still name this fleet's server.
   */
  clone = async (owner: Owner): Promise<Fleet> => {
    await this.server.stop();
    const cleanup = new Cleanup();
    owner.after(() => cleanup.run());
    try {
      const f = new Fleet(await tempDir(cleanup, 'patchwire-fleet-'), this.token, this.product, cleanup, this.first);
      await cp(this.root, f.root, { recursive: true, verbatimSymlinks: true });
      f.rootFile = join(f.root, relative(this.root, this.rootFile));
      f.server = await f.serve(this.first.name, this.first);
      return f;
    } catch (err) {
      await cleanup.run();
      throw err;
    }
  };

  /** Starts another `patchwire serve` on `<root>/<name>`; stopped with the fleet. */
  serve = async (name: string, o: { token?: string; args?: string[]; env?: Record<string, string> } = {}): Promise<ServerProcess> => {
    const token = o.token ?? this.token;
    const s = await startServer(join(this.root, name), { token, args: o.args, env: o.env });
    this.cleanup.after(() => s.stop());
    this.tokens.set(s.url, token);
    return s;
  };

  /** `patchwire product create` (exit 0 asserted); returns the root file written. */
  createProduct = async (o: At & { rootOut?: string } = {}): Promise<string> => {
    const name = o.product ?? this.product;
    const rootOut = o.rootOut ?? join(this.root, `${name}-${randomBytes(3).toString('hex')}.root.json`);
    const r = await runCli(['product', 'create', ...this.admin(o.server), '--product', name, '--key', this.key, '--root-out', rootOut]);
    assert.equal(r.code, 0, r.stderr);
    return rootOut;
  };

  /** `patchwire publish` of a tree with these files; the exit code is the caller's to check. */
  publish = async (version: string, files: Record<string, string>, o: At & { extra?: string[] } = {}): Promise<CliResult> => {
    const dir = await writeTree(join(this.root, 'trees', `${version}-${randomBytes(4).toString('hex')}`), files);
    return runCli(['publish', ...this.admin(o.server), '--product', o.product ?? this.product, '--version', version, '--key', this.key, ...(o.extra ?? []), dir]);
  };

  agentDir = (name: string): string => join(this.root, 'agents', name);

  /** `patchwire init` of `agentDir(name)` with device id `mac` (exit 0 asserted); `extra`: more flags. */
  initAgent = async (name: string, mac: string, o: At & { rootFile?: string; extra?: string[] } = {}): Promise<string> => {
    const dir = this.agentDir(name);
    const r = await runCli(['init', '--dir', dir, '--server', o.server ?? this.server.url, '--product', o.product ?? this.product,
      '--root', o.rootFile ?? this.rootFile, '--device-id', mac, ...(o.extra ?? [])]);
    assert.equal(r.code, 0, r.stderr);
    return dir;
  };

  /**
   * Makes the agent in `to` the same device as the one in `from` (its device key copied, before
   * `to` first authenticates): one device, one key, whichever server it checks with.
   */
  sameDevice = async (from: string, to: string): Promise<void> => {
    await mkdir(join(to, '.patchwire'), { recursive: true });
    await copyFile(join(from, '.patchwire', 'device-key.json'), join(to, '.patchwire', 'device-key.json'));
  };

  /** `patchwire check --json`, parsed; a failed check throws with its stderr. */
  check = (dir: string, ...flags: string[]): Promise<CheckResult> => runJson<CheckResult>(['check', '--dir', dir, '--json', ...flags]);

  state = async (dir: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(join(dir, '.patchwire', 'state.json'), 'utf8')) as Record<string, unknown>;

  /** Stops every server the fleet started and removes its folder. */
  close = (): Promise<void> => this.cleanup.run();
}

/** Fleet.start, the name the tests read best. */
export const startFleet = Fleet.start;
