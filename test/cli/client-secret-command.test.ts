/**
 * `oauth-mailer client-secret rotate <provider>` against the local OAuth servers (each taking several
 * secrets at once, as Google and Entra ID do during a rotation) while senders keep sending.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, it } from 'node:test';
import type { Target } from '../../cli/target.ts';
import { GetSecretValueCommand } from '../../functions/shared/aws/secrets-manager.ts';
import { createTopic, queueCounts, type TestQueues } from '../../local/world/aws.ts';
import { clientSecretId } from '../../local/world/index.ts';
import { PROFILES, type ProfileName } from '../../local/world/provider-strings.ts';
import { assertNoSecretsIn } from '../harness/assertions.ts';
import { localTarget, runCli, writeTarget } from '../harness/cli.ts';
import { aMessage, newSender } from '../harness/factories.ts';
import { useHarness } from '../harness/lifecycle.ts';

describe('cli: oauth-mailer client-secret rotate', () => {
  const context = useHarness();
  const { harness } = context;
  let queues: TestQueues;
  let target: Target;
  let targetFile: string;
  let alerts: Awaited<ReturnType<typeof createTopic>>;

  beforeEach(async () => {
    queues = await harness.createQueues();
    alerts = await createTopic(harness.sqs, 'operators');
    target = { ...localTarget(harness, queues), alertTopicArn: alerts.topicArn };
    targetFile = writeTarget(target);
  });

  const rotate = (secret: string, provider: string, file = targetFile) =>
    runCli(file, `${secret}\n`, 'client-secret', 'rotate', provider, '--json');
  const stored = async (profile: ProfileName, stage: 'AWSCURRENT' | 'AWSPREVIOUS' = 'AWSCURRENT') => {
    const { SecretString, VersionId } = await harness.secretsManager.send(
      new GetSecretValueCommand({ SecretId: clientSecretId(profile), VersionStage: stage }),
    );
    return { value: SecretString, versionId: VersionId };
  };
  const newSecret = (profile: ProfileName) => `${profile}-${randomBytes(18).toString('base64url')}`;

  for (const profile of PROFILES) {
    it(`${profile}: proves the new secret at the provider, stores it with the old one kept as AWSPREVIOUS, tells the operators once; the same secret again changes nothing`, async () => {
      const server = harness.oauth[profile];
      const old = server.clientSecret;
      const added = newSecret(profile);
      server.addClientSecret(added);

      const rotated = await rotate(added, profile);

      assert.equal(rotated.code, 0, rotated.output);
      assert.deepEqual(
        [rotated.json.changed, rotated.json.previousKept, rotated.json.announced],
        [true, true, true],
      );
      assert.equal((await stored(profile)).value, added);
      assert.equal((await stored(profile, 'AWSPREVIOUS')).value, old);
      const notices = await alerts.read();
      assert.deepEqual(
        notices.map((notice) => notice.subject),
        [`oauth-mailer: client-secret-rotated provider:${profile}`],
      );
      const event = JSON.parse(notices[0]!.message);
      assert.deepEqual(
        [event.kind, event.action, event.scope],
        ['operator-action', 'client-secret-rotated', `provider:${profile}`],
      );
      assertNoSecretsIn([rotated.output, ...notices.map((notice) => notice.message)], [old, added]);

      const version = (await stored(profile)).versionId;
      const again = await rotate(added, profile);
      assert.equal(again.code, 0, again.output);
      assert.deepEqual([again.json.changed, again.json.announced], [false, false]);
      assert.equal((await stored(profile)).versionId, version, 'no new version');
      assert.equal((await alerts.read()).length, 0, 'nobody told twice');
    });
  }

  it('stores the secret when the topic refuses the announcement, exits 1 saying it is kept, and the same rotation again publishes it once; without a writable registry it is still published', async () => {
    const server = harness.oauth.google;
    const old = server.clientSecret;
    const added = newSecret('google');
    server.addClientSecret(added);
    const missingTopic = writeTarget({ ...target, alertTopicArn: `${alerts.topicArn}-missing` });

    const refused = await rotate(added, 'google', missingTopic);

    assert.equal(refused.code, 1, refused.output);
    assert.deepEqual(
      [refused.json.changed, refused.json.announced, refused.json.announcementsPending],
      [true, false, 1],
    );
    assert.equal((await stored('google')).value, added, 'the rotation stands');
    const again = await rotate(added, 'google');
    assert.deepEqual([again.code, again.json.changed, again.json.announcementsPending], [0, false, 0]);
    assert.deepEqual(
      (await alerts.read()).map((notice) => notice.subject),
      ['oauth-mailer: client-secret-rotated provider:google'],
    );

    server.removeClientSecret(old);
    const next = newSecret('google');
    server.addClientSecret(next);
    const noRegistry = writeTarget({ ...target, registryTableName: 'no-such-table' });
    const direct = await rotate(next, 'google', noRegistry);
    assert.deepEqual([direct.code, direct.json.announced], [0, true], direct.output);
    assert.equal((await alerts.read()).length, 1);
    assertNoSecretsIn([refused.output, again.output, direct.output], [old, added, next]);
  });

  it('refuses a secret the provider rejects, one given as an argument, an empty one, one the provider takes only with another client authentication, and one it cannot check: nothing stored, nobody told', async () => {
    const before = await stored('microsoft');
    const refused = await rotate('not-a-secret-of-this-client', 'microsoft');
    assert.deepEqual([refused.code, refused.json.error], [1, 'CLIENT_SECRET_REJECTED']);
    assert.match(
      String(refused.json.message),
      /refused this client secret .*AADSTS7000215.*nothing was stored/,
    );

    const asArgument = await runCli(targetFile, '', 'client-secret', 'rotate', 'google', 'leaked-value');
    assert.equal(asArgument.code, 2);
    assert.match(asArgument.output, /standard input only/);
    assert.ok(!asArgument.output.includes('leaked-value'));
    const empty = await rotate('', 'google');
    assert.deepEqual([empty.code, empty.json.error], [1, 'REQUEST_INVALID']);
    const pastedBadly = await rotate('abc\u0004def', 'google');
    assert.deepEqual([pastedBadly.code, pastedBadly.json.error], [1, 'REQUEST_INVALID']);

    // The strict server takes HTTP Basic only; a deployment set to client_secret_post would fail every mint.
    const providers = JSON.parse(target.providersJson);
    providers.strict.tokenEndpointAuthMethod = 'client_secret_post';
    const postTarget = writeTarget({ ...target, providersJson: JSON.stringify(providers) });
    const strictSecret = newSecret('strict');
    harness.oauth.strict.addClientSecret(strictSecret);
    const wrongMethod = await rotate(strictSecret, 'strict', postTarget);
    assert.deepEqual([wrongMethod.code, wrongMethod.json.error], [1, 'CLIENT_CONFIG_INVALID']);
    assert.match(String(wrongMethod.json.message), /only with client_secret_basic.*nothing was stored/);

    harness.oauth.google.outage = true;
    const down = await rotate(newSecret('google'), 'google');
    harness.oauth.google.outage = false;
    assert.deepEqual([down.code, down.json.error], [1, 'TOKEN_ENDPOINT_UNAVAILABLE']);
    assert.match(String(down.json.message), /could not prove the secret.*nothing was stored/);

    assert.equal((await stored('microsoft')).versionId, before.versionId);
    assert.equal((await stored('strict')).value, harness.oauth.strict.clientSecrets[0]);
    assert.equal((await stored('google')).value, harness.oauth.google.clientSecrets[0]);
    assert.equal((await alerts.read()).length, 0);
    assertNoSecretsIn(
      [refused, asArgument, empty, wrongMethod, down].map((run) => run.output),
      [strictSecret, ...harness.secrets()],
    );
  });

  it('keeps the stored shape: JSON with clientSecret stays JSON, its other fields kept', async () => {
    const old = harness.oauth.google.clientSecret;
    await harness.putClientSecret('google', JSON.stringify({ clientSecret: old, note: 'kept' }));
    const added = newSecret('google');
    harness.oauth.google.addClientSecret(added);

    const rotated = await rotate(added, 'google');

    assert.equal(rotated.code, 0, rotated.output);
    assert.deepEqual(JSON.parse((await stored('google')).value!), { clientSecret: added, note: 'kept' });
    assert.equal((await rotate(added, 'google')).json.changed, false, 'the same secret, in JSON: no change');
  });

  it('imports a refresh token in the middle of a rotation: the stored secret not yet taken by the provider, the previous one is', async () => {
    await harness.putClientSecret('google', newSecret('google'));
    const token = await harness.oauth.google.issueRefreshToken('ops@example.com');

    const imported = await runCli(
      targetFile,
      token,
      'import-token',
      'ops@example.com',
      '--provider',
      'google',
      '--json',
    );

    assert.equal(imported.code, 0, imported.output);
    assert.equal((await harness.registry.get('ops@example.com'))?.status, 'active');
  });

  it('revokes at the provider in the middle of a rotation: the stored secret not yet taken there, the previous one is', async () => {
    const { refreshToken } = await harness.connectMailbox('ops@example.com', 'google');
    await harness.putClientSecret('google', newSecret('google'));

    const revoked = await runCli(targetFile, '', 'revoke', '--mailbox', 'ops@example.com', '--json');

    assert.equal(revoked.code, 0, revoked.output);
    const [only] = revoked.json.revocations as Array<{ atProvider: string }>;
    assert.equal(only?.atProvider, 'revoked at the provider');
    assert.equal((await harness.oauth.google.introspect(refreshToken)).active, false);
  });

  it('keeps sending while the client secret is rotated (google, microsoft, strict): a secret added at the provider, rotated with the CLI, the old one removed; no send fails, and the instances that cached the old one keep minting', async () => {
    const mailboxes = Object.fromEntries(PROFILES.map((profile) => [profile, `${profile}@example.com`]));
    for (const profile of PROFILES) await harness.connectMailbox(mailboxes[profile]!, profile);
    // Two warm instances: both cache the old secret for five minutes, the default.
    const senders = [newSender(harness, queues), newSender(harness, queues)].map((sender) =>
      context.track(sender),
    );
    let queued = 0;
    let failed = 0;
    const sendSome = async (step: string) => {
      for (const sender of senders) {
        for (const profile of PROFILES)
          await sender.enqueue(aMessage({ from: mailboxes[profile], subject: `${step} ${queued++}` }));
        failed += (await sender.drain()).failed;
      }
    };
    const olds = Object.fromEntries(
      PROFILES.map((profile) => [profile, harness.oauth[profile].clientSecret]),
    );
    const news = Object.fromEntries(PROFILES.map((profile) => [profile, newSecret(profile)]));

    await sendSome('before');
    for (const profile of PROFILES) harness.oauth[profile].addClientSecret(news[profile]!);
    await sendSome('secret added at the provider');
    for (const profile of PROFILES) {
      const rotated = await rotate(news[profile]!, profile);
      assert.equal(rotated.code, 0, rotated.output);
      await sendSome(`${profile} rotated`);
    }
    for (const profile of PROFILES) harness.oauth[profile].removeClientSecret(olds[profile]!);
    // Every grant must be refreshed now (no token left, no connection logged in with one), by
    // instances whose cache still holds the removed secret.
    for (const profile of PROFILES) {
      await harness.expireSharedToken(mailboxes[profile]!);
      for (const sender of senders) sender.tokens.forget(mailboxes[profile]!);
    }
    for (const sender of senders) sender.close();
    await sendSome('old secret removed');
    await sendSome('after');

    assert.equal(failed, 0, 'no send failed, none retried');
    const sent = PROFILES.flatMap((profile) => harness.smtp[profile].messages.map((m) => m.parsed.subject));
    assert.equal(sent.length, queued, 'every message sent');
    assert.equal(new Set(sent).size, queued, 'each once');
    assert.equal((await queueCounts(harness.sqs, queues.deadLetterQueueUrl)).visible, 0);
    for (const profile of PROFILES) {
      const requests = harness.oauth[profile].tokenRequests;
      const refusedClient = requests.filter((request) => request.status === 401).length;
      assert.ok(
        refusedClient >= 1 && refusedClient <= senders.length,
        `${profile}: ${refusedClient} refusals`,
      );
      const issued = harness.oauth[profile].issuedSecrets();
      const otherwise = requests.filter((request) => request.status !== 200 && request.status !== 401);
      assert.equal(otherwise.length, 1, `${profile}: nothing else refused but the CLI's proof`);
      assert.ok(!issued.includes(otherwise[0]!.refreshToken!), 'which presented a made-up refresh token');
      const presented = requests.filter((r) => r.status === 200).map((r) => r.refreshToken);
      if (profile === 'strict')
        assert.equal(new Set(presented).size, presented.length, 'no refresh token used twice');
      assert.equal((await harness.registry.get(mailboxes[profile]!))?.status, 'active');
    }
    assertNoSecretsIn(
      senders.flatMap((sender) => sender.telemetry.lines),
      [...Object.values(olds), ...Object.values(news)],
    );
  });
});
