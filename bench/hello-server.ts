/**
 * The reference point of bench/check.ts: a bare fastify hello-world (same fastify as the server,
 * default options, no logger), GET / -> {"hello":"world"}, and POST /echo (JSON body with schema, echoed). Prints its URL like `patchwire serve`.
 * Run: node --import tsx bench/hello-server.ts [port]   (127.0.0.1 only; SIGTERM stops it)
 */
import Fastify from 'fastify';

const app = Fastify();
app.get('/', async () => ({ hello: 'world' }));
// The framework's own floor for a request shaped like a check: JSON body, schema validation, JSON answer.
const str = { type: 'string' } as const;
app.post('/echo', {
  schema: { body: { type: 'object', required: ['deviceId', 'product', 'channel'], properties: { deviceId: str, product: str, channel: str, version: str } } },
}, async (req) => req.body);

const port = Number(process.argv[2] ?? 0);
const address = await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`hello: listening on ${address}\n`);

const stop = () => void app.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
