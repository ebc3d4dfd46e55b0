const MAC_RE = /^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$/i;

/**
 * Normalises a MAC address to lower-case `aa:bb:cc:dd:ee:ff`. Accepts `:` or `-` separators or
 * none (`AABBCCDDEEFF`). Returns undefined for anything else, and for the all-zero and the
 * broadcast (all-ones) address: no network interface has either, so a device naming one is
 * misconfigured (or lying), and every such device would share one registry record.
 */
export function normaliseMac(input: unknown): string | undefined {
  if (typeof input !== 'string') return undefined;
  const s = input.trim();
  if (!MAC_RE.test(s)) return undefined;
  const hex = s.replace(/[:-]/g, '').toLowerCase();
  if (/^0+$/.test(hex) || /^f+$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(':');
}

/**
 * Normalises the start of a MAC address for a prefix search: 1 to 12 hex digits, with `:` or `-`
 * between them or none, in any case (`AA:BB:C`, `aabbc`, `aa-bb-c`), to the form device ids
 * have (`aa:bb:c`). Returns undefined for anything else.
 */
export function normaliseMacPrefix(input: unknown): string | undefined {
  if (typeof input !== 'string' || input.length > 17 || !/^[0-9a-f:-]+$/i.test(input)) return undefined;
  const hex = input.replace(/[:-]/g, '').toLowerCase();
  if (hex.length === 0 || hex.length > 12) return undefined;
  return hex.match(/.{1,2}/g)!.join(':');
}
