// The layout shows the architecture: lower layers never import higher ones. This test enforces it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

const SRC = resolve(import.meta.dirname, '../src');

/** Rank of each top-level folder of src/: a file may import only from folders of equal or lower rank. */
const RANK: Record<string, number> = {
  common: 0,
  host: 1,
  image: 2, container: 2, vm: 2, network: 2, storage: 2, gpu: 2,
  engine: 3,
  cli: 4, api: 4,
};
/** Drivers are peers: they must not import each other either (the engine composes them). */
const PEERS_APART = new Set(['container', 'vm', 'network', 'storage', 'gpu']);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function layerOf(path: string): string {
  return relative(SRC, path).split('/')[0]!;
}

test('every folder of src/ has a layer', () => {
  for (const d of readdirSync(SRC)) {
    if (statSync(join(SRC, d)).isDirectory()) assert.ok(d in RANK, `src/${d} has no layer in test/architecture.test.ts`);
  }
});

test('lower layers never import higher ones', () => {
  const violations: string[] = [];
  for (const f of files(SRC)) {
    const from = layerOf(f);
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2]!;
      if (!spec.startsWith('.')) continue;
      const to = layerOf(resolve(dirname(f), spec));
      if (!(to in RANK)) { violations.push(`${relative(SRC, f)} imports ${spec}, outside src/`); continue; }
      if (RANK[to]! > RANK[from]!) violations.push(`${relative(SRC, f)} (${from}) imports ${spec} (${to})`);
      else if (to !== from && PEERS_APART.has(to) && PEERS_APART.has(from)) violations.push(`${relative(SRC, f)} (${from}) imports peer ${spec} (${to})`);
    }
  }
  assert.deepEqual(violations, []);
});
