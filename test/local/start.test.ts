import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser } from 'playwright-core';
import { startLocalMode } from '../../local/start.ts';
import { listen } from '../../local/world/listen.ts';
import { projectRoot } from '../../local/world/net.ts';
import { launchChromium, signInAndConsent } from '../harness/browser.ts';
import { getWithHost } from '../harness/http.ts';

describe('local mode: the whole product on one machine', () => {
  let local: Awaited<ReturnType<typeof startLocalMode>>;
  let browser: Browser;

  before(async () => {
    local = await startLocalMode({
      port: 0,
      targetFile: join(mkdtempSync(join(tmpdir(), 'local-')), 'target.json'),
      validateEveryMs: 3_600_000,
      env: {},
    });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await local?.stop();
  });

  it('connects a mailbox in the browser, sends with the CLI, and shows the message on the capture page', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(await local.connectUrl('local'));
    await signInAndConsent(page, 'ops@example.com');
    await page.waitForSelector('h1');
    assert.equal(await page.textContent('h1'), 'Mailbox connected');

    const sent = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [
          join(projectRoot, 'cli/oauth-mailer.ts'),
          'send',
          '--local-file',
          local.targetFile,
          '--from',
          'ops@example.com',
          '--to',
          'friend@example.net',
          '--subject',
          'Hello from local mode',
          '--text',
          'It works',
        ],
        { env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 },
        (error, stdout, stderr) => (error ? reject(new Error(stderr)) : resolve(stdout)),
      ),
    );
    assert.match(sent, /^queued as [0-9a-f-]{36}/);
    // What local mode runs is the stack cdk deploy made, not a wiring of its own.
    const target = JSON.parse(readFileSync(local.targetFile, 'utf8')) as Record<string, string>;
    assert.equal(target.queueUrl, local.outputs.QueueUrl);
    assert.equal(target.registryTableName, local.outputs.RegistryTableName);

    const deadline = Date.now() + 30_000;
    while (
      Date.now() < deadline &&
      !(await (await fetch(local.viewerUrl, { signal: AbortSignal.timeout(5_000) })).text()).includes(
        'Hello from local mode',
      )
    )
      await sleep(250);
    await page.goto(local.viewerUrl);
    await page.click('text=Hello from local mode');
    assert.equal(await page.textContent('#subject'), 'Hello from local mode');
    assert.match((await page.textContent('pre')) ?? '', /It works/);
    if (process.env.SCREENSHOT_DIR)
      await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/local-mode-message.png` });
    await page.click('text=Raw source');
    assert.match((await page.textContent('body')) ?? '', /Subject: Hello from local mode/);
  });

  it('answers a page whose name was rebound to 127.0.0.1 with 421, on the connect route and the capture page', async () => {
    const connect = await local.connectUrl('local');
    const rebound = await getWithHost(connect, `attacker.example:${new URL(connect).port}`);
    assert.equal(rebound.status, 421);
    assert.match(rebound.body, /Misdirected Request/);
    assert.equal((await getWithHost(local.viewerUrl, 'attacker.example')).status, 421);

    for (const name of ['127.0.0.1', 'localhost']) {
      const started = await getWithHost(connect, `${name}:${new URL(connect).port}`);
      assert.equal(started.status, 302, `${name}: the connect route redirects to the provider`);
      const viewer = await getWithHost(local.viewerUrl, `${name}:${new URL(local.viewerUrl).port}`);
      assert.equal(viewer.status, 200, `${name}: the capture page answers`);
    }
  });

  it('fails at once, naming the port, when the onboarding port is taken', async () => {
    const holder = createServer();
    const taken = await listen(holder);
    try {
      await assert.rejects(
        startLocalMode({ port: taken, viewerPort: 0, env: {} }),
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken}`),
      );
    } finally {
      holder.close();
    }
  });
});
