// Enforces the one-way import rules of docs/architecture.md (docs/design.md section 4).
// Fails when a file in src/<area>/ imports another area of ours it may not use, or when the
// agent (which programs embed) imports a heavy server-side package.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';

const allowed = {
  protocol: [],
  util: [],
  // delta: the agent applies deltas, the server computes them (its apply side is pure TypeScript).
  agent: ['protocol', 'util', 'delta'],
  server: ['protocol', 'store', 'artifacts', 'tuf', 'util', 'delta'],
  store: ['protocol', 'util'],
  artifacts: ['util'],
  tuf: ['protocol', 'util'],
  delta: ['util'],
  cli: ['*'],
  dashboard: ['protocol'],
};
// Packages the agent must never pull in: a program embedding patchwire/agent stays light.
const agentForbiddenPackages = ['fastify', '@fastify/', 'better-sqlite3', 'kysely', 'pg', '@aws-sdk/'];

function walk(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}
const problems = [];
const importRe = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
for (const file of walk('src')) {
  const area = relative('src', file).split(sep)[0];
  const rules = allowed[area];
  if (!rules) { problems.push(`${file}: folder src/${area} is not in the architecture table`); continue; }
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(importRe)) {
    const spec = m[1] ?? m[2];
    if (spec.startsWith('.')) {
      const target = relative('src', resolve(dirname(file), spec)).split(sep)[0];
      if (target !== area && !rules.includes('*') && !rules.includes(target)) {
        problems.push(`${file}: src/${area} may not import src/${target} ('${spec}')`);
      }
    } else if (area === 'agent' || area === 'protocol' || area === 'util') {
      if (agentForbiddenPackages.some((p) => spec === p || spec.startsWith(p.endsWith('/') ? p : p + '/'))) {
        problems.push(`${file}: src/${area} is used by the agent and may not import '${spec}'`);
      }
    }
  }
}
if (problems.length) {
  console.error('Import rule violations (see docs/architecture.md):\n' + problems.join('\n'));
  process.exit(1);
}
console.log('imports ok');
