/**
 * The reference point of bench/check.ts: a bare fastify hello-world (same fastify as the server,
 * default options, no logger), GET / -> {"hello":"world"}. Prints its URL like `patchwire serve`.
 * Run: node --import tsx bench/hello-server.ts [port]   (127.0.0.1 only; SIGTERM stops it)
 */
import Fastify from 'fastify';

const app = Fastify();
app.get('/', async () => ({ hello: 'world' }));

const port = Number(process.argv[2] ?? 0);
const address = await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`hello: listening on ${address}\n`);

const stop = () => void app.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
