/**
 * The direction of dependencies, checked on every source file's imports: tooling (tests, benchmarks,
 * scripts) → the local world → the CLI, the producer client and the CDK app → the functions; nothing
 * outside test/ imports test/; a function imports only its own folder and functions/shared/; and the
 * folders of functions/shared/ never import each other back and forth.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { projectRoot } from '../local/world/net.ts';

/** A folder may import only folders of a lower rank (and itself). */
const RANK: Record<string, number> = {
  functions: 0,
  client: 1,
  infra: 1,
  cli: 2,
  local: 3,
  bench: 4,
  scripts: 4,
  test: 5,
};

interface Import {
  readonly from: string;
  readonly to: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(projectRoot, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

function projectImports(): Import[] {
  const specifier = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g;
  return Object.keys(RANK)
    .flatMap(sourceFiles)
    .flatMap((from) =>
      [...readFileSync(join(projectRoot, from), 'utf8').matchAll(specifier)].map((match) => ({
        from,
        to: relative(projectRoot, resolve(projectRoot, dirname(from), match[1]!)),
      })),
    );
}

const top = (path: string) => path.split('/')[0]!;
/** The unit of functions/shared/ a file belongs to: its folder, or the file itself at the top. */
const sharedUnit = (path: string) => path.split('/').slice(0, 3).join('/');
const shown = (edges: readonly Import[]) => edges.map((edge) => `${edge.from} → ${edge.to}`).join('\n');

/** Every cycle-closing edge between units: an edge a → b where b already reaches a. */
function backEdges(edges: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const reaches = (start: string, goal: string, seen = new Set<string>()): boolean => {
    if (start === goal) return true;
    if (seen.has(start)) return false;
    seen.add(start);
    return [...(edges.get(start) ?? [])].some((next) => reaches(next, goal, seen));
  };
  return [...edges].flatMap(([from, targets]) =>
    [...targets].filter((to) => reaches(to, from)).map((to) => `${from} ⇄ ${to}`),
  );
}

describe('Dependency direction', () => {
  const imports = projectImports();

  it('finds the imports it checks', () => {
    assert.ok(imports.length > 300, `only ${imports.length} imports found`);
  });

  it('runs from tooling to the local world to the CLI, client and infra to the functions, never back', () => {
    const upward = imports.filter(
      ({ from, to }) => top(from) !== top(to) && !(RANK[top(from)]! > (RANK[top(to)] ?? Number.NaN)),
    );
    assert.equal(shown(upward), '');
  });

  it('keeps each function to its own folder and functions/shared/, and shared code to itself', () => {
    const crossing = imports.filter(({ from, to }) => {
      if (top(from) !== 'functions' || top(to) !== 'functions') return false;
      const [, fromFunction] = from.split('/');
      const [, toFunction] = to.split('/');
      return toFunction !== 'shared' && toFunction !== fromFunction;
    });
    assert.equal(shown(crossing), '');
  });

  it('has no back-and-forth between the folders of functions/shared/', () => {
    const graph = new Map<string, Set<string>>();
    for (const { from, to } of imports) {
      if (!from.startsWith('functions/shared/') || !to.startsWith('functions/shared/')) continue;
      const [a, b] = [sharedUnit(from), sharedUnit(to)];
      if (a !== b) graph.set(a, (graph.get(a) ?? new Set()).add(b));
    }
    assert.deepEqual(backEdges(graph), []);
  });
});
