import { createServer } from 'node:net';

/** The port `serve` should listen on is taken. */
export class PortInUseError extends Error {
  override name = 'PortInUseError';
  constructor(readonly host: string, readonly port: number) {
    super(`port ${port} on ${host} is in use (by another patchwire?); pass another --port, or stop what listens there`);
  }
}

/**
 * Fails with PortInUseError when `host:port` cannot be listened on, before the server creates its
 * data folder or keys (a start that cannot listen leaves nothing behind). Port 0 is always free.
 */
export async function checkPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new PortInUseError(host, port) : err));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
