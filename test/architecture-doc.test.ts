// docs/architecture.md documents the agent's update machine; this test keeps it true: the
// transition table in the doc must list exactly the rows of TRANSITIONS, and the saved state
// names (a frozen on-disk format) must be the ones SAVED_STATES allows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SAVED_STATES, TRANSITIONS, UPDATE_STATES } from '../src/agent/update/machine.js';

const doc = readFileSync(new URL('../docs/architecture.md', import.meta.url), 'utf8');

/** The rows `| from | event | to | note |` of the table whose header is `| from | event | to |`. */
function docTransitions(): string[] {
  const lines = doc.split('\n');
  const head = lines.findIndex((l) => /^\|\s*from\s*\|\s*event\s*\|\s*to\s*\|/.test(l));
  assert.ok(head >= 0, 'docs/architecture.md has no "| from | event | to |" table');
  const rows: string[] = [];
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith('|')) break;
    const [from, event, to] = line.split('|').slice(1, 4).map((c) => c.trim());
    rows.push(`${from} ${event} ${to}`);
  }
  return rows;
}

test('the transition table in docs/architecture.md is exactly TRANSITIONS', () => {
  const inDoc = docTransitions();
  const inCode = TRANSITIONS.map(([f, e, t]) => `${f} ${e} ${t}`);
  assert.equal(new Set(inDoc).size, inDoc.length, 'the doc lists a row twice');
  assert.deepEqual([...inDoc].sort(), [...inCode].sort(), 'docs/architecture.md and TRANSITIONS (src/agent/update/machine.ts) differ');
});

test('every state named in the doc table is a state of the machine', () => {
  for (const row of docTransitions()) {
    const [from, , to] = row.split(' ');
    assert.ok((UPDATE_STATES as readonly string[]).includes(from!), `unknown state ${from}`);
    assert.ok((UPDATE_STATES as readonly string[]).includes(to!), `unknown state ${to}`);
  }
});

test('the saved state names in docs/architecture.md are SAVED_STATES', () => {
  const m = /Saved state names: ([^(]+)\(/.exec(doc);
  assert.ok(m, 'docs/architecture.md does not list the saved state names');
  const names = [...m[1]!.matchAll(/`([a-z-]+)`/g)].map((x) => x[1]);
  assert.deepEqual([...names].sort(), [...SAVED_STATES].sort());
});
