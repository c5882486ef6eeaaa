/**
 * A benchmark run on its own writes its section of bench/results.json and its targets (their names
 * start with its prefix), leaving the rest as the last full run wrote it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../local/world/net.ts';

export interface Target {
  readonly name: string;
  readonly target: string;
  readonly measured: number | undefined;
  readonly met: boolean;
  readonly spread?: { readonly min: number; readonly max: number };
}

/** Replaces `results[key]`, and the targets whose names start with `prefix` by `targets`. */
export function writeSection(
  key: string,
  section: unknown,
  prefix: string,
  targets: readonly Target[],
): void {
  const path = join(projectRoot, 'bench/results.json');
  const results = JSON.parse(readFileSync(path, 'utf8'));
  results[key] = section;
  results.targets = [
    ...(results.targets as Target[]).filter((target) => !target.name.startsWith(prefix)),
    ...targets,
  ];
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
  console.log(JSON.stringify({ section, targets }, null, 2));
}
