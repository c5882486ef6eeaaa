import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type DeployedFunction, invokeOnce, startInvoker } from '../../../local/world/deployed-function.ts';

describe('local world: a deployed function run warm in a process of its own', () => {
  const dir = mkdtempSync(join(tmpdir(), 'invoker-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const bundle = (name: string, code: string): DeployedFunction => {
    const handlerModule = join(dir, `${name}.mjs`);
    writeFileSync(handlerModule, code);
    return { handlerModule, environment: {} };
  };

  it('answers each invocation with what the handler returned, its environment the one given', async () => {
    const fn = bundle(
      'echo',
      'export const handler = async (event) => { console.log("seen", event.n); return { n: event.n, region: process.env.AWS_REGION }; };',
    );
    const instance = await startInvoker(fn, { AWS_REGION: 'eu-west-1' });
    try {
      assert.deepEqual(await instance.invoke({ n: 1 }), { n: 1, region: 'eu-west-1' });
      assert.deepEqual(await instance.invoke({ n: 2 }), { n: 2, region: 'eu-west-1' });
    } finally {
      await instance.stop();
    }
    assert.deepEqual(instance.output, ['seen 1', 'seen 2']);
  });

  it('fails at once, with what the function said, when its code does not load or its process ends', async () => {
    const broken = bundle('broken', 'console.log("loading"); throw new Error("no such module");');
    await assert.rejects(startInvoker(broken, {}), /exited before it was ready[\s\S]*no such module/);
    const exiting = bundle('exiting', 'export const handler = async () => process.exit(3);');
    await assert.rejects(invokeOnce(exiting, {}, {}), /the function exited/);
  });
});
