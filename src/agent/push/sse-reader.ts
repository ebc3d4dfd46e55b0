import { MAX_PUSH_LINE_BYTES } from '../../protocol/push.js';

/** One server-sent event: its `event:` name (default `message`) and its `data:` lines joined. */
export interface SseEvent {
  event: string;
  data: string;
}

/** The stream sent a line longer than the limit: the reader stops (the agent reconnects later). */
export class SseLimitError extends Error {
  override name = 'SseLimitError';
}

/**
 * Reads a text/event-stream (the subset of the HTML spec patchwire uses: `event`, `data`,
 * comments; `id` and `retry` are ignored). Bounded: a line or an event longer than
 * `maxLineBytes` throws SseLimitError instead of growing a buffer without end.
 */
export class SseReader {
  #partial = '';
  #event = '';
  #data: string[] = [];
  #dataBytes = 0;

  constructor(private readonly maxLineBytes = MAX_PUSH_LINE_BYTES) {}

  /** Feeds a chunk; returns the events it completed. */
  push(chunk: string): SseEvent[] {
    const out: SseEvent[] = [];
    const text = this.#partial + chunk;
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      this.line(text.slice(start, text[nl - 1] === '\r' && nl > start ? nl - 1 : nl), out);
      start = nl + 1;
    }
    this.#partial = text.slice(start);
    if (Buffer.byteLength(this.#partial) > this.maxLineBytes) throw new SseLimitError(`the event stream sent a line longer than ${this.maxLineBytes} bytes`);
    return out;
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.#data.length > 0) out.push({ event: this.#event || 'message', data: this.#data.join('\n') });
      this.#event = '';
      this.#data = [];
      this.#dataBytes = 0;
      return;
    }
    if (line.startsWith(':')) return; // A comment: the server's heartbeat.
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.#event = value;
    else if (field === 'data') {
      this.#dataBytes += Buffer.byteLength(value) + 1;
      if (this.#dataBytes > this.maxLineBytes) throw new SseLimitError(`the event stream sent an event longer than ${this.maxLineBytes} bytes`);
      this.#data.push(value);
    }
  }
}
