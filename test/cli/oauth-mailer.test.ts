import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { Target } from '../../cli/target.ts';
import { Invitations } from '../../functions/onboarding/invitations.ts';
import { DynamoDBClient, GetItemCommand } from '../../functions/shared/aws/dynamodb.ts';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
} from '../../functions/shared/aws/secrets-manager.ts';
import { ENV } from '../../functions/shared/environment.ts';
import { PauseSwitch } from '../../functions/shared/mailbox/pause-switch.ts';
import { OWNER_TAGS } from '../../functions/shared/mailbox/secret-shape.ts';
import { GRANT_KEY_PREFIX, GrantCoordinator } from '../../functions/shared/oauth/grant-coordinator.ts';
import { authenticateClient } from '../../functions/shared/oauth/token-endpoint.ts';
import {
  assumedRoleProducer,
  createEventSourceMapping,
  createTopic,
  EMULATOR_SENDER_ID,
  enqueue,
  queueCounts,
} from '../../local/world/aws.ts';
import { MAILBOX_PREFIX, type World } from '../../local/world/index.ts';
import { guidOf } from '../../local/world/oauth-server.ts';
import { assertNoSecretsIn, deadLetters } from '../harness/assertions.ts';
import { localTarget, runCli, writeTarget } from '../harness/cli.ts';
import { aMessage, FAST_RETRIES, newSender, startSenderWorkers } from '../harness/factories.ts';
import { useHarness } from '../harness/lifecycle.ts';

describe('cli: oauth-mailer', () => {
  const context = useHarness();
  const { harness } = context;
  let targetFile: string;
  let queues: Awaited<ReturnType<World['createQueues']>>;

  let target: Target;

  beforeEach(async () => {
    queues = await harness.createQueues();
    target = localTarget(harness, queues);
    targetFile = writeTarget(target);
  });

  /** Runs the CLI as a user would, against the local target, with `input` on its standard input (a pipe); JSON output parsed. */
  const run = (input: string, ...args: string[]) => runCli(targetFile, input, ...args);
  const cli = (...args: string[]) => run('', ...args);
  /** `import-token` with the token piped in, as `printf %s "$TOKEN" | oauth-mailer import-token ...`. */
  const importToken = (token: string, mailbox: string, provider: string) =>
    run(token, 'import-token', mailbox, '--provider', provider, '--json');

  const storedSecret = async (address: string) => {
    const { SecretString } = await harness.secretsManager.send(
      new GetSecretValueCommand({ SecretId: `${MAILBOX_PREFIX}${address}` }),
    );
    return JSON.parse(SecretString ?? '{}') as Record<string, string>;
  };

  it('lists, adds (with an expiry) and removes suppression list entries, each command safe to repeat, and refuses what is not an address', async () => {
    await harness.suppression.add({
      address: 'gone@example.net',
      reason: 'bounce',
      detail: '5.1.1 no such user',
    });

    const added = await cli(
      'suppression',
      'add',
      'Stop@Example.net',
      '--days',
      '30',
      '--note',
      'asked to stop',
      '--json',
    );
    assert.equal(added.code, 0, added.stderr);
    const entry = added.json.entry as { address: string; reason: string; expires: string; detail: string };
    assert.equal(entry.address, 'stop@example.net');
    assert.equal(entry.reason, 'manual');
    assert.equal(entry.detail, 'asked to stop');
    assert.ok(Math.abs(Date.parse(entry.expires) - Date.now() - 30 * 86_400_000) < 60_000);
    assert.equal((await cli('suppression', 'add', 'stop@example.net')).code, 0, 'adding again replaces');

    const listed = await cli('suppression', 'list');
    assert.equal(listed.code, 0);
    assert.match(listed.stdout, /gone@example\.net {2}bounce {2}since .* {2}5\.1\.1 no such user/);
    assert.match(listed.stdout, /stop@example\.net {2}manual/);
    assert.deepEqual(
      [...(await harness.suppression.suppressed(['STOP@example.net'])).keys()],
      ['STOP@example.net'],
    );

    const removed = await cli('suppression', 'remove', 'gone@example.net', '--json');
    assert.deepEqual([removed.code, removed.json.removed], [0, true]);
    const again = await cli('suppression', 'remove', 'gone@example.net');
    assert.deepEqual([again.code, again.stdout.trim()], [0, 'gone@example.net was not on the list']);
    assert.equal((await harness.suppression.suppressed(['gone@example.net'])).size, 0);

    const bad = await cli('suppression', 'add', 'not-an-address');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /an email address is required/);
    assert.equal((await cli('suppression', 'add', 'a@example.net', '--days', '0')).code, 2);
    assert.equal((await cli('suppression', 'purge')).code, 2);
  });

  it('puts (a new version each time the parts change, none when they do not), gets, lists, renders and deletes templates (a repeat changes nothing, the next put continues the numbering), and refuses one that does not parse', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'templates-'));
    const file = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const text = file('welcome.txt', 'Hello {{name}}');
    const html = file('welcome.html', '<p>Hello {{name}}</p>');

    const putWelcome = (subject: string, ...files: string[]) =>
      cli('template', 'put', 'welcome', '--subject', subject, ...files);

    const put = await putWelcome('Hi {{name}}', '--text-file', text, '--html-file', html);
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, /^stored welcome version 1 \(/);
    const same = await putWelcome('Hi {{name}}', '--text-file', text, '--html-file', html, '--json');
    assert.deepEqual(
      [same.code, same.json.created, (same.json.template as { version: number }).version],
      [0, false, 1],
    );
    const changed = await putWelcome('Welcome {{name}}', '--text-file', text, '--json');
    assert.equal((changed.json.template as { version: number }).version, 2);

    const got = await cli('template', 'get', 'welcome', '--version', '1');
    assert.equal(got.code, 0);
    assert.match(
      got.stdout,
      /^welcome version 1 .*\nsubject: Hi \{\{name\}\}\n--- text\nHello \{\{name\}\}\n--- html\n<p>Hello \{\{name\}\}<\/p>/s,
    );
    const listed = await cli('template', 'list');
    assert.match(listed.stdout, /^welcome {2}version 2 {2}\S+ {2}Welcome \{\{name\}\}$/m);

    const renderVersion1 = (data: string) =>
      cli('template', 'render', 'welcome', '--version', '1', '--data', data, '--json');
    const rendered = await renderVersion1('{"name":"<Ann>"}');
    assert.equal(rendered.code, 0, rendered.stderr);
    assert.deepEqual(rendered.json.rendered, {
      subject: 'Hi <Ann>',
      text: 'Hello <Ann>',
      html: '<p>Hello &lt;Ann&gt;</p>',
    });
    const missing = await cli('template', 'render', 'welcome', '--data', '{}', '--json');
    assert.deepEqual([missing.code, missing.json.error], [1, 'TEMPLATE_DATA_MISSING']);
    const unknown = await cli('template', 'render', 'nope', '--data', '{}', '--json');
    assert.deepEqual([unknown.code, unknown.json.error], [1, 'TEMPLATE_UNKNOWN']);

    const broken = await cli(
      'template',
      'put',
      'broken',
      '--subject',
      'x',
      '--html-file',
      file('b.html', '{{{raw}}}'),
    );
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /not a valid template: .*unescaped.* is not allowed/);
    assert.equal(await harness.templates.get('broken'), undefined);
    assert.equal((await cli('template', 'put', 'x', '--subject', 'x')).code, 2, 'a body file is required');

    assert.equal((await cli('template', 'delete', 'welcome')).code, 2, 'only with --yes');
    const deleted = await cli('template', 'delete', 'welcome', '--yes');
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.match(
      deleted.stdout,
      /^deleted welcome: 2 version\(s\), the last 2\. Senders refuse mail naming it \(pinned versions too\) as TEMPLATE_UNKNOWN within 30 s; .* A later put makes version 3\.$/m,
    );
    assert.equal(await harness.templates.get('welcome'), undefined, 'the latest is gone');
    assert.equal(await harness.templates.get('welcome', 1), undefined, 'and every version');
    assert.equal((await cli('template', 'get', 'welcome')).code, 2);
    assert.equal((await cli('template', 'get', 'welcome', '--version', '2')).code, 2);
    const renderDeleted = await renderVersion1('{}');
    assert.deepEqual([renderDeleted.code, renderDeleted.json.error], [1, 'TEMPLATE_UNKNOWN']);
    assert.doesNotMatch((await cli('template', 'list')).stdout, /welcome/);
    const again = await cli('template', 'delete', 'welcome', '--yes', '--json');
    assert.deepEqual(
      [again.code, again.json.deleted, again.json.lastVersion, again.json.changed],
      [0, 0, 2, false],
      'safe to repeat',
    );
    assert.match(
      (await cli('template', 'delete', 'welcome', '--yes')).stdout,
      /welcome is deleted already \(its last version was 2\): nothing changed/,
    );
    assert.match(
      (await cli('template', 'delete', 'nope', '--yes')).stdout,
      /no template nope: nothing deleted/,
    );
    const reput = await putWelcome('Welcome {{name}}', '--text-file', text);
    assert.match(reput.stdout, /^stored welcome version 3 \(/, 'numbering continues after the delete');
  });

  it('creates a one-time invitation bound to the hinted address, and prints its link', async () => {
    const { code, json } = await cli('connect', 'google', '--login-hint', 'ops@example.com', '--json');
    assert.equal(code, 0);
    const url = new URL(String(json.url));
    assert.equal(`${url.origin}${url.pathname}`, `${harness.onboardingUrl}/connect/google`);
    assert.equal(url.searchParams.get('login_hint'), 'ops@example.com');
    assert.equal(json.for, 'ops@example.com');
    const invitation = await new Invitations(new DynamoDBClient({}), harness.stateTable).open(
      Invitations.idOf(url.searchParams.get('invitation')!),
      'google',
    );
    assert.equal(invitation.for, 'ops@example.com');
    assert.ok(invitation.expiresAt - Date.now() > 71 * 3_600_000, 'valid for 72 hours by default');
    const tooLong = await cli('connect', 'google', '--any', '--expires-hours', '200');
    assert.equal(tooLong.code, 2);
    const forNobody = await cli('connect', 'google');
    assert.equal(forNobody.code, 2, 'an invitation for any mailbox only on request');
    assert.match(forNobody.stderr, /--for <address\|@domain> \(or --any/);
    const unknown = await cli('connect', 'yahoo');
    assert.equal(unknown.code, 2);
    assert.match(
      unknown.stderr,
      /unknown provider "yahoo"; this deployment has: google, microsoft, strict, local/,
    );
  });

  it('approves that another account may replace the one that connected a mailbox', async () => {
    const { secretName } = await harness.connectMailbox('ops@example.com', 'google');

    const { code, json } = await cli('approve-replacement', 'ops@example.com', '--hours', '2', '--json');

    assert.equal(code, 0);
    const { Tags = [] } = await harness.secretsManager.send(
      new DescribeSecretCommand({ SecretId: secretName }),
    );
    const until = Tags.find((tag) => tag.Key === OWNER_TAGS.replacementApprovedUntil)?.Value;
    assert.equal(until, json.approvedUntil);
    assert.ok(Date.parse(until!) - Date.now() > 3_500_000);
    const unknown = await cli('approve-replacement', 'nobody@example.com');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no connected mailbox nobody@example.com/);
  });

  it('validates a message before enqueueing it, and prints its id', async () => {
    const sent = await cli(
      'send',
      '--from',
      'ops@example.com',
      '--to',
      'a@example.net',
      '--subject',
      'Hi',
      '--text',
      'Hello',
      '--json',
    );
    assert.equal(sent.code, 0);
    assert.match(String(sent.json.messageId), /^[0-9a-f-]{36}$/);
    const bad = await cli(
      'send',
      '--from',
      'ops@example.com',
      '--to',
      'not an address',
      '--subject',
      'Hi',
      '--text',
      'x',
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /to: must be a valid email address/);
    const file = join(mkdtempSync(join(tmpdir(), 'msg-')), 'message.json');
    writeFileSync(file, JSON.stringify(aMessage()));
    assert.equal((await cli('send', '--file', file)).code, 0);
    assert.equal((await queueCounts(harness.sqs, queues.queueUrl)).visible, 2);
  });

  it('lists mailboxes with their health, after validating them now', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    await harness.connectMailbox('ms@example.com', 'microsoft');
    const validated = await cli('validate', '--json');
    assert.equal(validated.code, 0);
    assert.equal(validated.json.healthy, 2);
    const listed = await cli('mailboxes', '--json');
    const rows = listed.json.mailboxes as Array<Record<string, string>>;
    assert.deepEqual(rows.map((row) => [row.mailbox, row.provider, row.status]).sort(), [
      ['ms@example.com', 'microsoft', 'active'],
      ['ops@example.com', 'google', 'active'],
    ]);
    assert.ok(rows.every((row) => row.lastValidated));
    const text = await cli('mailboxes');
    assert.match(text.stdout, /^mailbox\s+provider\s+status/m);
    assert.equal((await cli('validate', 'nobody@example.com')).code, 2);
  });

  it('shows how many messages a revoked mailbox has parked', async () => {
    const { refreshToken } = await harness.connectMailbox('gone@example.com', 'microsoft');
    await harness.oauth.microsoft.revoke(refreshToken);
    const sender = context.track(newSender(harness, queues));
    for (let index = 0; index < 3; index++) await sender.enqueue(aMessage({ from: 'gone@example.com' }));
    await sender.drain();

    const { json } = await cli('mailboxes', '--json');
    const [row] = json.mailboxes as Array<Record<string, unknown>>;
    assert.deepEqual([row?.mailbox, row?.status, row?.parked], ['gone@example.com', 'revoked', 3]);
  });

  it('filters the mailboxes by status, pages through them at a limit, and counts them by status', async () => {
    const { refreshToken } = await harness.connectMailbox('gone@example.com', 'microsoft');
    await harness.connectMailbox('ops@example.com', 'google');
    await harness.connectMailbox('news@example.com', 'google');
    await harness.oauth.microsoft.revoke(refreshToken);
    await cli('validate');

    const revoked = await cli('mailboxes', '--status', 'revoked', '--json');
    const limited = await cli('mailboxes', '--limit', '1', '--json');

    const rows = (result: { json: Record<string, unknown> }) =>
      result.json.mailboxes as Array<Record<string, unknown>>;
    assert.deepEqual(
      rows(revoked).map((row) => [row.mailbox, row.provider, row.status]),
      [['gone@example.com', 'microsoft', 'revoked']],
    );
    assert.deepEqual(revoked.json.counts, { active: 2, revoked: 1 });
    assert.equal(rows(limited).length, 1);
    assert.equal(limited.json.next, rows(limited)[0]!.mailbox, 'where the next page starts');
    const rest = await cli('mailboxes', '--limit', '5', '--after', limited.json.next as string, '--json');
    assert.equal(rest.json.next, undefined, 'the last page');
    assert.deepEqual(
      [...rows(limited), ...rows(rest)].map((row) => row.mailbox).sort(),
      ['gone@example.com', 'news@example.com', 'ops@example.com'],
      'every mailbox once across the pages',
    );
    assert.equal((await cli('mailboxes', '--limit', '0')).code, 2);
  });

  it("sets a mailbox's own sending limits in the registry, shows and clears them, and refuses bad ones", async () => {
    await harness.connectMailbox('ops@example.com', 'microsoft');

    const set = await cli(
      'limits',
      'ops@example.com',
      '--messages-per-minute',
      '10',
      '--connections',
      '1',
      '--json',
    );
    const more = await cli('limits', 'ops@example.com', '--messages-per-day', '500', '--json');

    assert.equal(set.code, 0);
    assert.deepEqual(
      more.json.limits,
      { messagesPerMinute: 10, connections: 1, messagesPerDay: 500 },
      'merged',
    );
    assert.deepEqual((await harness.registry.get('ops@example.com'))?.limits, more.json.limits);
    const listed = await cli('mailboxes', '--json');
    assert.deepEqual((listed.json.mailboxes as Array<Record<string, unknown>>)[0]?.limits, more.json.limits);
    assert.equal((await cli('limits', 'ops@example.com', '--connections', '0')).code, 2, 'at least 1');
    assert.equal(
      (await cli('limits', 'nobody@example.com', '--connections', '1')).code,
      2,
      'unknown mailbox',
    );
    await cli('limits', 'ops@example.com', '--clear');
    assert.equal((await harness.registry.get('ops@example.com'))?.limits, undefined);
  });

  it('moves dead-lettered messages back to the queue', async () => {
    for (let index = 0; index < 3; index++) {
      await harness.sqs.send(
        new SendMessageCommand({
          QueueUrl: queues.deadLetterQueueUrl,
          MessageBody: JSON.stringify(aMessage()),
        }),
      );
    }
    const { code, json } = await cli('redrive', '--json');
    assert.equal(code, 0);
    assert.equal(json.moved, 3);
    assert.equal((await queueCounts(harness.sqs, queues.queueUrl)).visible, 3);
  });

  it('redrives under producer rules only as a relay, so the producers of the mail are kept', async () => {
    await harness.sqs.send(
      new SendMessageCommand({ QueueUrl: queues.deadLetterQueueUrl, MessageBody: '{}' }),
    );
    const withRelays = (relays: string[]) =>
      writeFileSync(
        targetFile,
        JSON.stringify({ ...target, producerRulesJson: JSON.stringify({ rules: [], relays }) }),
      );
    withRelays(['AROASOMEONEELSE']);

    const refused = await cli('redrive');

    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /not one of the deployment's relays/);
    assert.equal((await queueCounts(harness.sqs, queues.deadLetterQueueUrl)).visible, 1, 'nothing moved');
    // The emulator's shared test credentials answer GetCallerIdentity with this id.
    withRelays(['AKIAIOSFODNN7EXAMPLE']);
    assert.equal((await cli('redrive', '--json')).json.moved, 1);
  });

  describe('producer', () => {
    type Producer = Awaited<ReturnType<typeof assumedRoleProducer>>;
    let leaked: Producer;
    let billing: Producer;
    beforeEach(async () => {
      await harness.connectMailbox('ops@example.com', 'google');
      leaked = await assumedRoleProducer('leaky-service', 'job-1');
      billing = await assumedRoleProducer('billing-service', 'run-1');
    });
    /** A sender without producer rules (the relays known), reading the cut-off list at every batch. */
    const aSender = () =>
      context.track(
        newSender(harness, queues, {
          config: { producerCutOffRecheckMs: 0, producerPolicy: { relays: [EMULATOR_SENDER_ID] } },
        }),
      );
    const queueAs = async (
      producer: Pick<Producer, 'sqs'>,
      message: Record<string, unknown>,
      attributes: Record<string, string> = {},
    ) =>
      (
        await producer.sqs.send(
          new SendMessageCommand({
            QueueUrl: queues.queueUrl,
            MessageBody: JSON.stringify(aMessage(message)),
            MessageAttributes: Object.fromEntries(
              Object.entries(attributes).map(([name, value]) => [
                name,
                { DataType: 'String', StringValue: value },
              ]),
            ),
          }),
        )
      ).MessageId!;
    const sent = () => harness.smtp.google.messages.map((m) => m.parsed.subject).sort();
    const tick = () => new Promise((resolve) => setTimeout(resolve, 1100));

    it('cuts a producer off in one command: its next message is refused and nothing of it sent, others send, a redrive leaves its dead letters in place; restore lets it send again and the redrive sends them; each announced once, repeats change nothing', async () => {
      const alerts = await createTopic(harness.sqs, 'operators');
      writeFileSync(targetFile, JSON.stringify({ ...target, alertTopicArn: alerts.topicArn }));
      const sender = aSender();

      const cut = await cli(
        'producer',
        'cut-off',
        leaked.roleId,
        '--reason',
        'keys in a public repo',
        '--json',
      );
      assert.equal(cut.code, 0, cut.output);
      assert.deepEqual([cut.json.cutOff, cut.json.announced], [true, true]);
      const human = await cli('producer', 'cut-off', leaked.roleId);
      assert.match(human.stdout, /already cut off: nothing changed/);
      assert.match(human.stdout, new RegExp(`RoleId=='${leaked.roleId}'`));
      assert.match(human.stdout, /put-role-policy .*AWSRevokeOlderSessions.*aws:TokenIssueTime/);
      const user = await cli('producer', 'cut-off', 'AIDAEXAMPLEUSER');
      assert.match(user.stdout, /update-access-key .*--status Inactive/);
      await queueAs(leaked, { subject: 'from the leak' });
      await queueAs(billing, { subject: 'billing' });
      await sender.drain();

      assert.deepEqual(sent(), ['billing']);
      const [letter] = await deadLetters(harness, queues.deadLetterQueueUrl);
      assert.deepEqual([letter?.code, letter?.producer], ['PRODUCER_CUT_OFF', leaked.senderId]);
      const listed = await cli('producer', 'list', '--json');
      assert.deepEqual(
        (listed.json.cutOffs as Array<Record<string, unknown>>).map((c) => [c.principal, c.reason]).sort(),
        [
          ['AIDAEXAMPLEUSER', undefined],
          [leaked.roleId, 'keys in a public repo'],
        ],
      );

      const held = await cli('redrive', '--json');
      assert.deepEqual([held.code, held.json.moved, held.json.kept], [0, 0, 1], 'not redriven while cut off');

      const restored = await cli('producer', 'restore', leaked.roleId, '--json');
      assert.deepEqual([restored.code, restored.json.restored, restored.json.announced], [0, true, true]);
      const again = await cli('producer', 'restore', leaked.roleId, '--json');
      assert.deepEqual([again.code, again.json.restored, again.json.announced], [0, false, false]);
      await queueAs(leaked, { subject: 'after the restore' });
      assert.equal((await cli('redrive', '--json')).json.moved, 1);
      await sender.drain();
      assert.deepEqual(sent(), ['after the restore', 'billing', 'from the leak']);

      const actions = (await alerts.read()).map((notice) => JSON.parse(notice.message));
      assert.deepEqual(
        actions.map((a) => [a.kind, a.action, a.scope]),
        [
          ['operator-action', 'producer-cut-off', `producer:${leaked.roleId}`],
          ['operator-action', 'producer-cut-off', 'producer:AIDAEXAMPLEUSER'],
          ['operator-action', 'producer-restored', `producer:${leaked.roleId}`],
        ],
        'one event per change, none for the repeats',
      );
      assert.match(actions[0].by, /^arn:aws:/);
      assertNoSecretsIn(
        [cut.output, human.output, user.output, ...actions.map((a) => JSON.stringify(a))],
        harness.secrets(),
      );
    });

    it('refuses a principal SQS never reports (odd characters, a wildcard, nothing) and cuts off a relay only with --yes', async () => {
      for (const odd of ['*', 'AROA EXAMPLE', "AROAX'; DROP", 'AROAX\nforged', '', 'x'.repeat(257)]) {
        const refused = await cli('producer', 'cut-off', odd);
        assert.equal(refused.code, 2, `${JSON.stringify(odd)}: ${refused.output}`);
        assert.match(refused.stderr, /as SQS reports it/);
      }
      assert.equal((await cli('producer', 'queued', '*', '--since', '1h')).code, 2);
      assert.equal((await cli('producer', 'pardon', leaked.roleId)).code, 2);
      writeFileSync(
        targetFile,
        JSON.stringify({ ...target, producerRulesJson: JSON.stringify({ relays: [EMULATOR_SENDER_ID] }) }),
      );
      const relay = await cli('producer', 'cut-off', EMULATOR_SENDER_ID);
      assert.equal(relay.code, 2);
      assert.match(relay.stderr, /one of the deployment's relays/);
      assert.deepEqual((await cli('producer', 'list', '--json')).json.cutOffs, [], 'nothing was cut off');
      assert.equal((await cli('producer', 'cut-off', EMULATOR_SENDER_ID, '--yes')).code, 0);
    });

    it('lists exactly what a producer queued in a window, with each recipient and fate, leaves the dead letters in place, and says what it cannot see', async () => {
      const sender = aSender();
      await queueAs(leaked, { subject: 'before the window' });
      await sender.drain();
      await tick();
      const since = new Date().toISOString();
      const inWindow = await queueAs(leaked, {
        subject: 'in the window',
        to: ['a@example.net', 'b@example.net'],
        idempotencyKey: 'invoice-7',
      });
      // Waiting mail the sender (a relay) put back for the leaked producer.
      const relayed = await queueAs(
        harness,
        { subject: 'put back for it' },
        { 'oauth-mailer-producer': leaked.senderId },
      );
      await queueAs(billing, { subject: 'billing in the window' });
      await sender.drain();
      assert.equal((await cli('producer', 'cut-off', leaked.roleId)).code, 0);
      const refused = await queueAs(leaked, { subject: 'refused', to: 'c@example.net' });
      // Another producer that claims to be the leaked one: refused, but its own mail, not the leaked one's.
      await queueAs(billing, { subject: 'billing posing' }, { 'oauth-mailer-producer': leaked.senderId });
      await sender.drain();
      const until = new Date().toISOString();
      await tick();
      assert.equal((await cli('producer', 'restore', leaked.roleId)).code, 0);
      await queueAs(leaked, { subject: 'after the window' });
      await sender.drain();

      const { code, json, stdout } = await cli(
        'producer',
        'queued',
        leaked.roleId,
        '--since',
        since,
        '--until',
        until,
        '--json',
      );

      assert.equal(code, 0, stdout);
      const messages = json.messages as Array<Record<string, unknown>>;
      assert.deepEqual(
        messages
          .map((m) => ({
            id: m.sqsMessageId,
            key: m.idempotencyKey,
            fate: m.fate,
            code: m.code,
            mailbox: m.mailbox,
            recipients: m.recipients,
          }))
          .sort((a, b) => String(a.id).localeCompare(String(b.id))),
        [
          {
            id: inWindow,
            key: 'invoice-7',
            fate: 'sent',
            code: undefined,
            mailbox: 'ops@example.com',
            recipients: [
              { address: 'a@example.net', fate: 'accepted' },
              { address: 'b@example.net', fate: 'accepted' },
            ],
          },
          {
            id: relayed,
            key: undefined,
            fate: 'sent',
            code: undefined,
            mailbox: 'ops@example.com',
            recipients: [{ address: 'customer@example.net', fate: 'accepted' }],
          },
          {
            id: refused,
            key: undefined,
            fate: 'dead-lettered',
            code: 'PRODUCER_CUT_OFF',
            mailbox: 'ops@example.com',
            recipients: [{ address: 'c@example.net', fate: 'not sent' }],
          },
        ].sort((a, b) => String(a.id).localeCompare(String(b.id))),
      );
      assert.ok((json.cannotSee as string[]).some((line) => /still in the queue/.test(line)));
      assert.ok((json.scan as { pages: number }).pages >= 1);
      assert.equal(
        (await queueCounts(harness.sqs, queues.deadLetterQueueUrl)).visible,
        2,
        'the dead letters stay',
      );

      const billingOwn = await cli(
        'producer',
        'queued',
        billing.senderId,
        '--since',
        since,
        '--until',
        until,
        '--json',
      );
      assert.deepEqual(
        (billingOwn.json.messages as Array<Record<string, unknown>>).map((m) => m.fate).sort(),
        ['dead-lettered', 'sent'],
        'the forged claim is listed under the producer that queued it',
      );
      const empty = await cli(
        'producer',
        'queued',
        leaked.roleId,
        '--since',
        '2020-01-01T00:00:00Z',
        '--until',
        '2020-01-02T00:00:00Z',
        '--json',
      );
      assert.deepEqual([empty.code, empty.json.messages], [0, []]);
      for (const window of [
        ['--since', until, '--until', since],
        ['--since', 'yesterday-ish'],
        ['--until', until],
      ]) {
        assert.equal((await cli('producer', 'queued', leaked.roleId, ...window)).code, 2, window.join(' '));
      }
    });
  });

  /** Whether the provider still takes the refresh token: 200 mints an access token, 400 means it is dead. */
  const refreshStatus = async (profile: 'google' | 'strict', refreshToken: string) => {
    const oauth = harness.oauth[profile];
    const response = await fetch(oauth.tokenEndpoint, {
      method: 'POST',
      ...authenticateClient(oauth.clientAuthMethod, oauth.clientId, oauth.clientSecret, {
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
      }),
    });
    await response.body?.cancel();
    return response.status;
  };

  /** A revoke run's `--json` revocations by mailbox. */
  const revocationsBy = (json: Record<string, unknown>): Record<string, Record<string, unknown>> =>
    Object.fromEntries((json.revocations as Array<Record<string, unknown>>).map((r) => [r.mailbox, r]));

  it('revokes every mailbox after a leak: at the provider where it can, always the stored tokens, the mailboxes marked and their reconnect links sent; nothing can be minted after, and a second run changes nothing', async () => {
    const google = await harness.connectMailbox('ops@example.com', 'google');
    await harness.connectMailbox('ms@example.com', 'microsoft');
    const strict = await harness.connectMailbox('st@example.com', 'strict');
    const alerts = await createTopic(harness.sqs, 'operators');
    writeFileSync(targetFile, JSON.stringify({ ...target, alertTopicArn: alerts.topicArn }));

    assert.equal((await cli('revoke', '--all')).code, 2, 'many at once only with --yes');
    const { code, json, stdout } = await cli('revoke', '--all', '--yes', '--json');

    assert.equal(code, 0, stdout);
    const byMailbox = revocationsBy(json);
    assert.equal(byMailbox['ops@example.com']?.atProvider, 'revoked at the provider');
    assert.equal(byMailbox['st@example.com']?.atProvider, 'revoked at the provider');
    assert.equal(byMailbox['ms@example.com']?.atProvider, 'not supported by the provider');
    assert.match(String(byMailbox['ms@example.com']?.byHand), /Revoke-MgUserSignInSession/);
    assert.ok(Object.values(byMailbox).every((r) => r.tokensDeleted === true && r.notified === true));
    // The servers that can revoke confirm it: the refresh tokens no longer work there.
    for (const [profile, { refreshToken }] of [
      ['google', google],
      ['strict', strict],
    ] as const) {
      assert.equal(
        await refreshStatus(profile, refreshToken),
        400,
        `${profile}: the refresh token no longer works`,
      );
    }
    // Nothing can be minted from what is stored, for any of them.
    const sender = newSender(harness, queues);
    for (const address of ['ops@example.com', 'ms@example.com', 'st@example.com']) {
      await assert.rejects(sender.tokens.get(address), { code: 'MAILBOX_REVOKED' }, address);
    }
    sender.close();
    const statuses = (await cli('mailboxes', '--json')).json.mailboxes as Array<Record<string, unknown>>;
    assert.deepEqual(statuses.map((m) => [m.mailbox, m.status, m.lastError]).sort(), [
      ['ms@example.com', 'revoked', 'OPERATOR_REVOKED'],
      ['ops@example.com', 'revoked', 'OPERATOR_REVOKED'],
      ['st@example.com', 'revoked', 'OPERATOR_REVOKED'],
    ]);
    const notices = await alerts.read();
    const reconnects = notices.filter((n) => n.subject.startsWith('oauth-mailer: reconnect'));
    assert.equal(reconnects.length, 3);
    assert.ok(reconnects.every((n) => /oauth-mailer connect \w+ --for \S+@example\.com/.test(n.message)));
    // One record of the operator's action for everyone on the topic, with who did it.
    const actions = notices.filter((n) => n.subject === 'oauth-mailer: revoked deployment');
    assert.equal(actions.length, 1, notices.map((n) => n.subject).join(', '));
    const action = JSON.parse(actions[0]!.message);
    assert.equal(action.kind, 'operator-action');
    assert.match(action.by, /^arn:aws:/);
    assert.deepEqual(action.detail.mailboxes.map((m: { mailbox: string }) => m.mailbox).sort(), [
      'ms@example.com',
      'ops@example.com',
      'st@example.com',
    ]);
    assert.equal(json.announced, true);
    assertNoSecretsIn([stdout, ...notices.map((n) => n.message)], harness.secrets());

    const again = await cli('revoke', '--all', '--yes', '--json');
    assert.equal(again.code, 0);
    assert.ok(
      (again.json.revocations as Array<Record<string, unknown>>).every(
        (r: Record<string, unknown>) => r.tokensDeleted === false && r.notified === false,
      ),
      'safe to repeat: nothing more to do, nobody told twice',
    );
    assert.equal((await alerts.read()).length, 0);
  });

  it('keeps a token whose revocation the provider did not confirm aside, unusable, and exits 1 saying to run again; the rerun revokes it at the provider and clears the mark; a third run changes nothing', async () => {
    const google = await harness.connectMailbox('ops@example.com', 'google');
    const strict = await harness.connectMailbox('st@example.com', 'strict');
    const alerts = await createTopic(harness.sqs, 'operators');
    writeFileSync(targetFile, JSON.stringify({ ...target, alertTopicArn: alerts.topicArn }));
    harness.oauth.google.outage = true;

    const first = await cli('revoke', '--all', '--yes', '--json');

    harness.oauth.google.outage = false;
    assert.equal(first.code, 1, 'something is left to do');
    const firstBy = revocationsBy(first.json);
    assert.equal(
      firstBy['ops@example.com']?.atProvider,
      'revocation at the provider pending: run again (the provider answered HTTP 503)',
    );
    assert.deepEqual(
      [firstBy['ops@example.com']?.pending, firstBy['ops@example.com']?.tokensDeleted],
      [true, true],
    );
    assert.match(String(firstBy['ops@example.com']?.byHand), /myaccount\.google\.com\/permissions/);
    assert.match(String(firstBy['ops@example.com']?.byHand), /Security > API controls > App access control/);
    assert.deepEqual(
      [firstBy['st@example.com']?.atProvider, firstBy['st@example.com']?.pending],
      ['revoked at the provider', false],
    );
    const marked = await storedSecret('ops@example.com');
    assert.equal(marked.refreshToken, undefined, 'nothing usable stays where a mint looks');
    assert.ok(marked.revokedAt);
    assert.equal(
      (marked.pendingRevocation as unknown as { refreshToken: string }).refreshToken,
      google.refreshToken,
      'the token is kept, aside, for the next try',
    );
    // The danger is real: the provider still takes the token, so nothing here may mint from it.
    assert.equal(await refreshStatus('google', google.refreshToken), 200);
    const sender = newSender(harness, queues);
    await assert.rejects(sender.tokens.get('ops@example.com'), { code: 'MAILBOX_REVOKED' });
    sender.close();
    const firstNotices = await alerts.read();
    assert.deepEqual(firstNotices.map((n) => n.subject).sort(), [
      'oauth-mailer: reconnect ops@example.com',
      'oauth-mailer: reconnect st@example.com',
      'oauth-mailer: revoked deployment',
    ]);

    const second = await cli('revoke', '--all', '--yes', '--json');

    assert.equal(second.code, 0, second.output);
    const secondBy = revocationsBy(second.json);
    assert.deepEqual(
      [secondBy['ops@example.com']?.atProvider, secondBy['ops@example.com']?.pending],
      ['revoked at the provider', false],
    );
    assert.equal(secondBy['ops@example.com']?.tokensDeleted, false);
    assert.match(String(secondBy['st@example.com']?.atProvider), /^nothing left to revoke/);
    const settled = await storedSecret('ops@example.com');
    assert.equal(settled.pendingRevocation, undefined, 'the mark is cleared once the provider confirmed');
    assert.equal(settled.revokedAt, marked.revokedAt, 'revoked since the first run');
    assert.equal(await refreshStatus('google', google.refreshToken), 400);
    assert.equal(await refreshStatus('strict', strict.refreshToken), 400);
    const secondNotices = await alerts.read();
    assert.deepEqual(
      secondNotices.map((n) => n.subject),
      ['oauth-mailer: revoked deployment'],
      'the confirmation is announced; nobody is asked to reconnect twice',
    );

    const third = await cli('revoke', '--all', '--yes', '--json');
    assert.equal(third.code, 0);
    assert.ok((third.json.revocations as Array<Record<string, unknown>>).every((r) => r.pending === false));
    assert.deepEqual(await alerts.read(), []);
    assertNoSecretsIn(
      [
        first.output,
        second.output,
        third.output,
        ...[...firstNotices, ...secondNotices].map((n) => n.message),
      ],
      harness.secrets(),
    );
  });

  it('settles a pending revocation whose answer was lost: Google answers invalid_token for a token it revoked already, and the rerun clears the mark', async () => {
    const google = await harness.connectMailbox('ops@example.com', 'google');
    harness.oauth.google.outage = true;
    const first = await cli('revoke', '--mailbox', 'ops@example.com', '--json');
    harness.oauth.google.outage = false;
    assert.equal(first.code, 1);
    // The revocation went through at Google after all (the answer was what got lost).
    await harness.oauth.google.revoke(google.refreshToken);

    const second = await cli('revoke', '--mailbox', 'ops@example.com', '--json');

    assert.equal(second.code, 0, second.output);
    const by = revocationsBy(second.json)['ops@example.com'];
    assert.deepEqual(
      [by?.atProvider, by?.pending],
      ['no longer valid at the provider (revoked or expired already)', false],
    );
    assert.equal((await storedSecret('ops@example.com')).pendingRevocation, undefined);
    assertNoSecretsIn([first.output, second.output], harness.secrets());
  });

  it("revokes the other mailboxes, and announces them, when one mailbox's secret was edited into something else; that one is reported failed and the run exits 1", async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    await harness.connectMailbox('odd@example.com', 'google');
    await harness.secretsManager.send(
      new PutSecretValueCommand({
        SecretId: `${MAILBOX_PREFIX}odd@example.com`,
        SecretString: 'edited by hand',
      }),
    );
    const alerts = await createTopic(harness.sqs, 'operators');
    writeFileSync(targetFile, JSON.stringify({ ...target, alertTopicArn: alerts.topicArn }));

    const { code, json, output } = await cli('revoke', '--all', '--yes', '--json');

    assert.equal(code, 1, output);
    const byMailbox = revocationsBy(json);
    assert.deepEqual(
      [byMailbox['odd@example.com']?.atProvider, byMailbox['odd@example.com']?.failed],
      ['failed (MAILBOX_SECRET_INVALID): run again', true],
    );
    assert.deepEqual(
      [byMailbox['ops@example.com']?.atProvider, byMailbox['ops@example.com']?.notified],
      ['revoked at the provider', true],
    );
    assert.deepEqual(
      (await alerts.read()).map((n) => n.subject),
      ['oauth-mailer: reconnect ops@example.com', 'oauth-mailer: revoked deployment'],
    );
  });

  it('disconnects a mailbox whose revocation is pending: the kept token is revoked at the provider first', async () => {
    const google = await harness.connectMailbox('ops@example.com', 'google');
    harness.oauth.google.outage = true;
    const revoked = await cli('revoke', '--mailbox', 'ops@example.com', '--json');
    harness.oauth.google.outage = false;
    assert.equal(revoked.code, 1, revoked.output);

    const { code, json } = await cli('disconnect', 'ops@example.com', '--json');

    assert.deepEqual([code, json.revoked], [0, 'revoked at the provider']);
    assert.equal(await refreshStatus('google', google.refreshToken), 400);
  });

  it("revokes all the same when the operators' topic refuses the announcements, exits 1 saying they are kept; the rerun publishes the reconnect link and the event, once", async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const alerts = await createTopic(harness.sqs, 'operators');
    const missingTopic = alerts.topicArn.replace(/:operators$/, ':no-such-topic');
    writeFileSync(targetFile, JSON.stringify({ ...target, alertTopicArn: missingTopic }));

    const failed = await cli('revoke', '--mailbox', 'ops@example.com', '--json');

    assert.equal(failed.code, 1, failed.output);
    assert.deepEqual([failed.json.announced, failed.json.announcementsPending], [false, 2]);
    const [revocation] = failed.json.revocations as Array<Record<string, unknown>>;
    assert.deepEqual(
      [revocation?.atProvider, revocation?.tokensDeleted, revocation?.notified],
      ['revoked at the provider', true, false],
    );
    const text = await cli('revoke', '--mailbox', 'ops@example.com');
    assert.equal(text.code, 1, 'still pending: the topic is still missing');
    assert.match(text.stdout, /did not take 2 announcement\(s\) \(NotFound\w*\).*kept in the registry/s);

    writeFileSync(targetFile, JSON.stringify({ ...target, alertTopicArn: alerts.topicArn }));
    const rerun = await cli('revoke', '--mailbox', 'ops@example.com', '--json');

    assert.equal(rerun.code, 0, rerun.output);
    assert.deepEqual([rerun.json.announced, rerun.json.announcementsPending], [false, 0]);
    const notices = await alerts.read();
    assert.deepEqual(
      notices.map((n) => n.subject),
      ['oauth-mailer: reconnect ops@example.com', 'oauth-mailer: revoked ops@example.com'],
    );
    assert.match(notices[0]!.message, /oauth-mailer connect google --for ops@example\.com/);
    assert.equal(JSON.parse(notices[1]!.message).kind, 'operator-action');
    const again = await cli('revoke', '--mailbox', 'ops@example.com', '--json');
    assert.equal(again.code, 0);
    assert.deepEqual(await alerts.read(), [], 'sent once');
    assertNoSecretsIn([failed.output, text.output, rerun.output], harness.secrets());
  });

  it('exits 1 naming the mailbox whose shared access token the sending table would not drop, and the rerun drops it', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    writeFileSync(targetFile, JSON.stringify({ ...target, sendingTableName: 'no-such-table' }));

    const failed = await cli('revoke', '--mailbox', 'ops@example.com', '--json');

    assert.equal(failed.code, 1, failed.output);
    const [revocation] = failed.json.revocations as Array<Record<string, unknown>>;
    assert.deepEqual([revocation?.tokensDeleted, revocation?.sharedTokenKept], [true, true]);
    const text = await cli('revoke', '--mailbox', 'ops@example.com');
    assert.match(text.stdout, /shared access token of ops@example\.com could not be dropped/);

    writeFileSync(targetFile, JSON.stringify(target));
    const rerun = await cli('revoke', '--mailbox', 'ops@example.com', '--json');
    assert.equal(rerun.code, 0, rerun.output);
    assert.equal((rerun.json.revocations as Array<Record<string, unknown>>)[0]?.sharedTokenKept, undefined);
  });

  it("drops with an operator's revocation a rotation the secret never took, whatever version it came from", async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const dynamodb = new DynamoDBClient({});
    const grants = GrantCoordinator.withMailboxKey({
      dynamodb,
      tableName: target.sendingTableName!,
      kmsKeyId: harness.mailboxKeyId(),
      kms: undefined,
    });
    // A sender rotated the refresh token and could not write it back: the newest token travels sealed.
    await grants.singleFlight('ops@example.com', { fresh: () => true }, async () => ({
      accessToken: 'access',
      expiresAt: Date.now() + 3_600_000,
      unsaved: { refreshToken: 'rotated-refresh', baseVersion: 'the-version-revoked-at-the-provider' },
    }));

    const { code, output } = await cli('revoke', '--mailbox', 'ops@example.com', '--json');

    assert.equal(code, 0, output);
    const { Item } = await dynamodb.send(
      new GetItemCommand({
        TableName: target.sendingTableName!,
        Key: { id: { S: `${GRANT_KEY_PREFIX}ops@example.com` } },
      }),
    );
    assert.ok(Item?.revokedVersion, 'the revocation recorded');
    assert.deepEqual(
      Object.keys(Item ?? {}).filter((name) => name.startsWith('unsaved') || name === 'token'),
      [],
      'no sealed token outlives the revocation',
    );
    dynamodb.destroy();
  });

  it('cuts a producer off and pauses a mailbox all the same when the topic refuses, each exiting 1; the next command publishes both kept events, once', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const alerts = await createTopic(harness.sqs, 'operators');
    const missingTopic = alerts.topicArn.replace(/:operators$/, ':no-such-topic');
    writeFileSync(targetFile, JSON.stringify({ ...target, alertTopicArn: missingTopic }));

    const cutOff = await cli('producer', 'cut-off', 'AIDAEXAMPLEUSER', '--reason', 'leaked', '--json');
    const paused = await cli('pause', '--mailbox', 'ops@example.com', '--json');

    assert.deepEqual([cutOff.code, cutOff.json.cutOff, cutOff.json.announcementsPending], [1, true, 1]);
    assert.deepEqual([paused.code, paused.json.changed, paused.json.announcementsPending], [1, true, 2]);
    assert.match((await cli('producer', 'list')).stdout, /AIDAEXAMPLEUSER/);

    writeFileSync(targetFile, JSON.stringify({ ...target, alertTopicArn: alerts.topicArn }));
    const rerun = await cli('producer', 'cut-off', 'AIDAEXAMPLEUSER', '--reason', 'leaked');

    assert.equal(rerun.code, 0, rerun.output);
    assert.match(rerun.stdout, /already cut off: nothing changed/);
    assert.match(rerun.stdout, /Published 2 announcement\(s\) an earlier command could not send/);
    assert.deepEqual(
      (await alerts.read()).map((n) => n.subject),
      ['oauth-mailer: producer-cut-off producer:AIDAEXAMPLEUSER', 'oauth-mailer: paused ops@example.com'],
      'in the order the changes were made',
    );
    const again = await cli('pause', '--mailbox', 'ops@example.com', '--json');
    assert.deepEqual([again.code, again.json.changed, again.json.announcementsPending], [0, false, 0]);
    assert.deepEqual(await alerts.read(), []);
  });

  it('pauses the whole deployment with mail in flight and queued: the event source stops, no send begins once the command returned, nothing is lost; resume sends every message once; repeats change nothing and announce nothing', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const alerts = await createTopic(harness.sqs, 'operators');
    const mapped = await harness.createQueues('paused-mail', { visibilityTimeout: 10, maxReceiveCount: 5 });
    const mappingUuid = await createEventSourceMapping('paused-sender', mapped.queueArn);
    writeFileSync(
      targetFile,
      JSON.stringify({
        ...target,
        queueUrl: mapped.queueUrl,
        deadLetterQueueUrl: mapped.deadLetterQueueUrl,
        alertTopicArn: alerts.topicArn,
        senderFunctionName: 'paused-sender',
      }),
    );
    const total = 120;
    for (let index = 0; index < total; index++)
      await enqueue(harness.sqs, mapped.queueUrl, aMessage({ subject: `m${index}` }));
    // A server that takes 400 ms per message keeps mail in flight when the pause comes.
    harness.smtp.google.chaos = { rate: 1, faults: [{ stage: 'data', delayMs: 400 }] };
    // Lambda's pollers go on for a while after a mapping is disabled: these read its state every 7 s,
    // longer than the senders take to see the pause, so what they still deliver meets it.
    const { source, output } = startSenderWorkers(harness, mapped, {
      workers: 2,
      batchSize: 5,
      mappingUuid,
      mappingRefreshMs: 7000,
      env: { [ENV.retryDelayScale]: '0.02' },
    });
    const sent = () => harness.smtp.google.messages;
    while (sent().length < 5) await sleep(50);

    const paused = await cli('pause', '--reason', 'token leak drill', '--json');
    const returnedAt = Date.now();
    const sentByThen = sent().length;
    await sleep(6000);

    assert.equal(paused.code, 0, paused.output);
    assert.equal(paused.json.changed, true);
    assert.deepEqual(
      (paused.json.eventSource as Array<{ uuid: string; state: string }>).map((m) => [m.uuid, m.state]),
      [[mappingUuid, 'Disabled']],
    );
    assert.ok(sentByThen < total, `mail was still queued when the pause held (${sentByThen} sent)`);
    assert.deepEqual(
      sent()
        .filter((message) => message.startedAt > returnedAt)
        .map((message) => message.parsed.subject),
      [],
      'no send began after the command returned',
    );
    assert.ok(source.stats.disabledPolls > 0, 'the event source stopped');
    assert.ok(
      output.some((line) => line.includes('"MessagesHeld"') && line.includes('DEPLOYMENT_PAUSED')),
      'what it delivered after the pause was held back, not sent',
    );
    assert.match(
      String(paused.json.warning),
      /SQS deletes a message 96 hours after it was queued, paused or not/,
    );
    const listed = await cli('mailboxes', '--json');
    assert.equal((listed.json.deployment as { paused: boolean; reason: string }).paused, true);
    assert.equal((listed.json.deployment as { reason: string }).reason, 'token leak drill');
    assert.match((await cli('mailboxes')).stdout, /the deployment is PAUSED since .* \(token leak drill\)/);
    const again = await cli('pause', '--json');
    assert.equal(again.json.changed, false, 'a repeat changes nothing');

    const resumed = await cli('resume', '--json');
    const idle = await source.waitUntilIdle({ quietPolls: 6, timeoutMs: 180_000 });
    await source.stop();

    assert.equal(resumed.code, 0, resumed.output);
    assert.equal(resumed.json.changed, true);
    assert.ok(idle, 'the queue drained after the resume');
    const subjects = sent().map((message) => message.parsed.subject);
    assert.equal(subjects.length, total, `every message sent (${subjects.length} of ${total})`);
    assert.equal(new Set(subjects).size, total, 'each once');
    assert.deepEqual(await queueCounts(harness.sqs, mapped.deadLetterQueueUrl), { visible: 0, inFlight: 0 });
    assert.equal((await cli('resume', '--json')).json.changed, false, 'a repeat changes nothing');
    assert.deepEqual((await cli('mailboxes', '--json')).json.deployment, { paused: false });
    const actions = (await alerts.read()).filter((n) => n.subject.startsWith('oauth-mailer: '));
    assert.deepEqual(
      actions.map((n) => n.subject),
      ['oauth-mailer: paused deployment', 'oauth-mailer: resumed deployment'],
      'one event each, none for the repeats',
    );
    assert.match(JSON.parse(actions[0]!.message).by, /^arn:aws:/);
    assertNoSecretsIn([paused.stdout, resumed.stdout, ...output], harness.secrets());
  });

  it('completes a deployment pause that a failure left half done (the pause written, the event source still on), and says so when it knows no event source', async () => {
    const alerts = await createTopic(harness.sqs, 'operators');
    const mappingUuid = await createEventSourceMapping('half-paused', queues.queueArn);
    await new PauseSwitch(new DynamoDBClient({}), harness.registryTable).pauseDeployment({
      since: new Date().toISOString(),
      reason: 'the run that failed',
    });
    const mapped = { ...target, alertTopicArn: alerts.topicArn, senderFunctionName: 'half-paused' };
    writeFileSync(targetFile, JSON.stringify(mapped));

    const completed = await cli('pause', '--json');

    assert.equal(completed.code, 0, completed.output);
    assert.equal(completed.json.changed, true, 'the event source turned off this time');
    assert.deepEqual(completed.json.eventSource, [{ uuid: mappingUuid, state: 'Disabled', changed: true }]);
    assert.equal(completed.json.announced, true);
    assert.equal((await cli('resume', '--json')).json.changed, true);

    // A target that names no sender function (an older local target): the pause still holds, by the senders.
    writeFileSync(targetFile, JSON.stringify({ ...target, alertTopicArn: alerts.topicArn }));
    const unmapped = await cli('pause');
    assert.equal(unmapped.code, 0, unmapped.output);
    assert.match(
      unmapped.stdout,
      /no event source mapping found for the sender: the senders still run and hold every message back/,
    );
    assert.equal((await cli('resume')).code, 0);
    const actions = (await alerts.read()).map((n) => n.subject);
    assert.deepEqual(actions, [
      'oauth-mailer: paused deployment',
      'oauth-mailer: resumed deployment',
      'oauth-mailer: paused deployment',
      'oauth-mailer: resumed deployment',
    ]);
  });

  it('pauses one mailbox: its mail is parked with MAILBOX_PAUSED and counted, `mailboxes` shows it, the others keep sending; resume sends the parked mail once; repeats change nothing', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    await harness.connectMailbox('ms@example.com', 'microsoft');
    const alerts = await createTopic(harness.sqs, 'operators');
    writeFileSync(targetFile, JSON.stringify({ ...target, alertTopicArn: alerts.topicArn }));
    assert.equal((await cli('pause', '--mailbox', 'nobody@example.com')).code, 1, 'an unknown mailbox');
    assert.equal((await cli('pause', '--mailbox', 'not an address')).code, 2);

    const paused = await cli(
      'pause',
      '--mailbox',
      'Ops@Example.com',
      '--reason',
      'account compromised',
      '--json',
    );
    const again = await cli('pause', '--mailbox', 'ops@example.com', '--json');
    const sender = context.track(newSender(harness, queues, { retryPolicy: FAST_RETRIES }));
    for (let index = 0; index < 3; index++) await sender.enqueue(aMessage({ subject: `ops ${index}` }));
    await sender.enqueue(aMessage({ from: 'ms@example.com', subject: 'ms' }));
    await sender.drain();
    await sleep(1100);
    await sender.drain();

    assert.equal(paused.code, 0, paused.output);
    assert.equal(paused.json.changed, true);
    assert.equal(again.json.changed, false, 'a repeat changes nothing');
    assert.equal(harness.smtp.microsoft.messages.length, 1, 'the other mailbox keeps sending');
    assert.equal(harness.smtp.google.messages.length, 0);
    assert.ok(sender.telemetry.metricSum('MessagesParked', { ErrorCode: 'MAILBOX_PAUSED' }) >= 3);
    const listed = await cli('mailboxes', '--json');
    const ops = (listed.json.mailboxes as Array<Record<string, unknown>>).find(
      (m) => m.mailbox === 'ops@example.com',
    );
    assert.equal(ops?.parked, 3, 'its parked mail counted');
    const pause = ops?.paused as { reason?: string; by?: string } | undefined;
    assert.equal(pause?.reason, 'account compromised');
    assert.match(String(pause?.by), /^arn:aws:/);
    assert.deepEqual(listed.json.pausedMailboxes, ['ops@example.com']);
    assert.match((await cli('mailboxes')).stdout, /ops@example\.com .* 3 +since \S+ \(account compromised\)/);

    const resumed = await cli('resume', '--mailbox', 'ops@example.com', '--json');
    for (let round = 0; round < 6 && harness.smtp.google.messages.length < 3; round++) {
      await sleep(1100);
      await sender.drain();
    }

    assert.equal(resumed.json.changed, true);
    assert.equal(resumed.json.parked, 3);
    assert.deepEqual(
      harness.smtp.google.messages.map((message) => message.parsed.subject).sort(),
      ['ops 0', 'ops 1', 'ops 2'],
      'each parked message sent once',
    );
    assert.equal((await harness.registry.get('ops@example.com'))?.parked, 0);
    assert.equal((await cli('resume', '--mailbox', 'ops@example.com', '--json')).json.changed, false);
    const actions = (await alerts.read()).map((n) => n.subject);
    assert.deepEqual(actions, [
      'oauth-mailer: paused ops@example.com',
      'oauth-mailer: resumed ops@example.com',
    ]);
  });

  it('disconnects a mailbox: the grant is revoked at the provider and the secret deleted', async () => {
    const { refreshToken } = await harness.connectMailbox('ops@example.com', 'google');
    const { code, json } = await cli('disconnect', 'ops@example.com', '--force', '--json');
    assert.equal(code, 0);
    assert.equal(json.revoked, 'revoked at the provider');
    const refresh = await fetch(harness.oauth.google.tokenEndpoint, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        client_id: harness.oauth.google.clientId,
        client_secret: harness.oauth.google.clientSecret,
      }),
    });
    assert.equal(refresh.status, 400, 'the refresh token no longer works');
    assert.deepEqual((await cli('mailboxes', '--json')).json.mailboxes, []);
    const again = await cli('disconnect', 'ops@example.com');
    assert.equal(again.code, 2);
    assert.match(again.stderr, /unknown mailbox ops@example.com/);
  });

  it('disconnects a mailbox whose secret was edited into something else: nothing to revoke, the secret deleted all the same', async () => {
    const { secretName } = await harness.connectMailbox('ops@example.com', 'google');
    await harness.secretsManager.send(
      new PutSecretValueCommand({ SecretId: secretName, SecretString: '{"hand":"edited"}' }),
    );

    const { code, json } = await cli('disconnect', 'ops@example.com', '--force', '--json');

    assert.equal(code, 0);
    assert.match(String(json.revoked), /not a mailbox secret/);
    assert.deepEqual((await cli('mailboxes', '--json')).json.mailboxes, []);
    assert.equal((await cli('disconnect', 'ops@example.com')).code, 2, 'gone');
  });

  it('connects a mailbox from a refresh token piped on standard input, proven by a mint and an SMTP login, and it sends', async () => {
    const refreshToken = await harness.oauth.google.issueRefreshToken('ops@example.com');

    const imported = await importToken(`${refreshToken}\n`, 'ops@example.com', 'google');

    assert.equal(imported.code, 0, imported.output);
    assert.deepEqual([imported.json.mailbox, imported.json.rotated], ['ops@example.com', false]);
    assert.equal(imported.json.account, 'ops@example.com', 'identified from the verified ID token');
    assert.ok(!imported.output.includes(refreshToken), 'the token is never printed');
    const secret = await storedSecret('ops@example.com');
    assert.deepEqual(
      [secret.refreshToken, secret.grantType, secret.provider],
      [refreshToken, 'refresh_token', 'google'],
    );
    assert.match(secret.scope ?? '', /https:\/\/mail\.google\.com\//);
    assert.equal((await harness.registry.get('ops@example.com'))?.status, 'active');
    const sender = context.track(newSender(harness, queues));
    await sender.enqueue(aMessage({ subject: 'after the import' }));
    await sender.drain();
    assert.deepEqual(
      harness.smtp.google.messages.map((message) => [message.user, message.parsed.subject]),
      [['ops@example.com', 'after the import']],
    );
  });

  it('imports a Microsoft token only with an ID token naming an accepted tenant, and keeps the rotated token', async () => {
    const refreshToken = await harness.oauth.microsoft.issueRefreshToken('ms@example.com');
    const imported = await importToken(refreshToken, 'ms@example.com', 'microsoft');
    assert.equal(imported.code, 0, imported.output);
    assert.deepEqual([imported.json.account, imported.json.rotated], ['ms@example.com', true]);
    const secret = await storedSecret('ms@example.com');
    assert.ok(secret.accountId, 'the owner is recorded, as after a browser consent');

    harness.oauth.microsoft.tenants.set('foreign.example', guidOf('tenant:foreign'));
    const foreign = await harness.oauth.microsoft.issueRefreshToken('ceo@foreign.example');
    const refused = await importToken(foreign, 'ceo@foreign.example', 'microsoft');
    assert.deepEqual([refused.code, refused.json.error], [1, 'TENANT_NOT_ALLOWED']);
  });

  it('says the imported token is spent when a rotating server replaced it and a later check refused the import', async () => {
    const refreshToken = await harness.oauth.strict.issueRefreshToken('ops@example.com');

    const typo = await importToken(refreshToken, 'opz@example.com', 'strict');

    assert.deepEqual([typo.code, typo.json.error], [1, 'MAILBOX_CONTROL_UNPROVEN']);
    assert.match(
      String(typo.json.message),
      /replaced the refresh token when it was used: the one you imported no longer works anywhere/,
    );
    assert.deepEqual((await cli('mailboxes', '--json')).json.mailboxes, []);
    assertNoSecretsIn([typo.output], [refreshToken]);
  });

  it('refuses to import into a disconnected mailbox whose secret still waits out its recovery window, before the provider sees the token', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    assert.equal((await cli('disconnect', 'ops@example.com')).code, 0, 'disconnected, recoverable');
    const before = harness.oauth.google.tokenRequests.length;
    const token = await harness.oauth.google.issueRefreshToken('ops@example.com');

    const refused = await importToken(token, 'ops@example.com', 'google');

    assert.deepEqual([refused.code, refused.json.error], [1, 'REQUEST_INVALID']);
    assert.match(String(refused.json.message), /waits out its recovery window: delete it for good/);
    assert.equal(harness.oauth.google.tokenRequests.length, before);
  });

  it('keeps the rotated token when a strictly rotating server replaces the imported one', async () => {
    const refreshToken = await harness.oauth.strict.issueRefreshToken('ops@example.com');

    const imported = await importToken(refreshToken, 'ops@example.com', 'strict');

    assert.equal(imported.code, 0, imported.output);
    assert.equal(imported.json.rotated, true);
    const secret = await storedSecret('ops@example.com');
    assert.notEqual(secret.refreshToken, refreshToken, 'the newest token is the one kept');
    assert.ok(!imported.output.includes(secret.refreshToken!));
    assert.equal(
      (await cli('validate', 'ops@example.com', '--json')).json.healthy,
      1,
      'the kept token works',
    );
  });

  it('refuses a revoked token, a token of another account, a connected mailbox and a token given as an argument, saving nothing', async () => {
    const revoked = await harness.oauth.google.issueRefreshToken('ops@example.com');
    await harness.oauth.google.revoke(revoked);
    const refusedToken = await importToken(revoked, 'ops@example.com', 'google');
    assert.deepEqual([refusedToken.code, refusedToken.json.error], [1, 'MAILBOX_REVOKED']);

    const others = await harness.oauth.google.issueRefreshToken('someone@example.com');
    const notTheirs = await importToken(others, 'ceo@example.com', 'google');
    assert.deepEqual([notTheirs.code, notTheirs.json.error], [1, 'MAILBOX_CONTROL_UNPROVEN']);
    assert.deepEqual((await cli('mailboxes', '--json')).json.mailboxes, [], 'nothing saved');

    await harness.connectMailbox('ops@example.com', 'google');
    const before = harness.oauth.google.tokenRequests.length;
    const fresh = await harness.oauth.google.issueRefreshToken('ops@example.com');
    const connected = await importToken(fresh, 'ops@example.com', 'google');
    assert.deepEqual([connected.code, connected.json.error], [1, 'REQUEST_INVALID']);
    assert.match(
      String(connected.json.message),
      /already connected: remove it first with `oauth-mailer disconnect ops@example.com --force`/,
    );
    assert.equal(harness.oauth.google.tokenRequests.length, before, 'the provider never saw the token');

    const asArgument = await run('', 'import-token', 'new@example.com', fresh, '--provider', 'google');
    assert.equal(asArgument.code, 2);
    assert.match(asArgument.output, /standard input only/);
    assert.ok(!asArgument.output.includes(fresh));
    const empty = await importToken('\n', 'new@example.com', 'google');
    assert.deepEqual([empty.code, empty.json.error], [1, 'REQUEST_INVALID']);
    const pastedBadly = await importToken('abc\u0004def', 'new@example.com', 'google');
    assert.deepEqual([pastedBadly.code, pastedBadly.json.error], [1, 'REQUEST_INVALID']);
    assertNoSecretsIn([refusedToken.output, notTheirs.output, connected.output], [revoked, others, fresh]);
  });

  it('registers an app-only mailbox', async () => {
    const { code, json } = await cli('register-app-mailbox', '--address', 'noreply@example.com', '--json');
    assert.equal(code, 0);
    assert.equal(json.created, true);
  });

  it('explains usage: --help on every command, a clear error for an unknown command', async () => {
    for (const command of [
      'connect',
      'mailboxes',
      'send',
      'validate',
      'redrive',
      'disconnect',
      'register-app-mailbox',
      'approve-replacement',
      'import-token',
      'client-secret',
    ]) {
      const { code, stdout } = await cli(command, '--help');
      assert.equal(code, 0);
      assert.match(stdout, new RegExp(`^Usage: oauth-mailer ${command}`));
    }
    const unknown = await cli('frobnicate');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
  });
});
