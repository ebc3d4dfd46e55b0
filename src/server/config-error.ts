/** Thrown for a server option that cannot work (the CLI exits 2 with the message). */
export class ServerConfigError extends Error {
  override name = 'ServerConfigError';
}
