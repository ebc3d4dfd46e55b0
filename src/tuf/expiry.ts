/**
 * TUF `expires` values: ISO-8601 UTC without milliseconds (`2025-01-01T00:00:00Z`), the form
 * python-tuf and go-tuf write, so metadata we sign reads the same in every client.
 */
export function tufTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function addDays(date: Date, days: number): Date {
  return new Date(date.getTime() + days * 86_400_000);
}

/** The expiry as a Date, or undefined when the text is not a date (Date parsing is lenient). */
export function parseExpires(text: string): Date | undefined {
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
