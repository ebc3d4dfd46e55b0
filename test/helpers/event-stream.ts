/**
 * A device's event stream (GET /v1/events) opened by hand over node:http, read with the agent's
 * own SseReader: tests see every event, the status of a refusal and when the server ends it.
 */
import { request, type IncomingMessage } from 'node:http';
import { SseReader, type SseEvent } from '../../src/agent/push/sse-reader.js';
import { eventsUrl } from '../../src/protocol/urls.js';
import { waitFor } from './wait-for.js';

export interface OpenedStream {
  status: number;
  headers: IncomingMessage['headers'];
  /** The whole body of a refusal (status not 200), parsed. */
  refusal?: { code?: string; message?: string };
  /** Events so far, in order, with `data` parsed. */
  events: Array<{ event: string; data: Record<string, unknown> }>;
  /** Comment lines (heartbeats) so far. */
  comments: () => number;
  /** Resolves when the server ended the stream. */
  ended: Promise<void>;
  /** Waits for the n-th (1-based) event of that name. */
  next(event: string, n?: number, timeout?: number): Promise<Record<string, unknown>>;
  close(): void;
}

export function openEvents(server: string, q: { deviceId: string; product: string; channel?: string }, token?: string): Promise<OpenedStream> {
  const url = eventsUrl(server, { deviceId: q.deviceId, product: q.product, channel: q.channel ?? 'stable' });
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      const events: OpenedStream['events'] = [];
      let comments = 0;
      let text = '';
      const reader = new SseReader();
      res.setEncoding('utf8');
      const ended = new Promise<void>((done) => {
        res.on('close', () => done());
        res.on('end', () => done());
      });
      const s: OpenedStream = {
        status: res.statusCode ?? 0, headers: res.headers, events, ended, comments: () => comments,
        next: (event, n = 1, timeout = 15_000) => waitFor(() => events.filter((e) => e.event === event)[n - 1]?.data, { what: `event ${event} #${n} on ${url}`, timeout, detail: () => JSON.stringify(events) }),
        close: () => req.destroy(),
      };
      if (s.status !== 200) {
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ ...s, refusal: JSON.parse(text) as OpenedStream['refusal'] }));
        return;
      }
      res.on('data', (d: string) => {
        comments += d.split('\n').filter((l) => l.startsWith(':')).length;
        for (const e of reader.push(d) as SseEvent[]) events.push({ event: e.event, data: JSON.parse(e.data) as Record<string, unknown> });
      });
      resolve(s);
    });
    req.on('error', reject);
    req.end();
  });
}
