import type { AlarmView } from '../../protocol/wire.js';

/**
 * POSTs a raised alarm to the `--alarm-webhook` URL (best effort: a failure is logged at warn
 * level). A redirect is not followed: it is logged with its Location, since the alarm (and any
 * token in the URL) must go to the address the operator configured and nowhere else.
 */
export function postAlarm(webhook: string, alarm: AlarmView, message: string, warn: (obj: object, msg: string) => void): void {
  fetch(webhook, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ alarm, message }),
    signal: AbortSignal.timeout(10_000),
    redirect: 'manual',
  }).then(
    async (res) => {
      await res.body?.cancel().catch(() => {});
      if (res.status >= 300 && res.status < 400) {
        const location = (res.headers.get('location') ?? '(no Location)').slice(0, 300);
        warn({ status: res.status, location }, `the alarm webhook ${webhook} answered ${res.status}, a redirect to ${location}; it was not followed: set --alarm-webhook to the final URL`);
      } else if (!res.ok) {
        warn({ status: res.status }, `the alarm webhook ${webhook} answered ${res.status}`);
      }
    },
    (err: Error) => warn({ err: err.message }, `the alarm webhook ${webhook} could not be reached`),
  );
}
