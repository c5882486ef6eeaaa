import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mapConcurrent } from '../../../functions/shared/concurrency.ts';
import { newValidator } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

const FLEET = 1000;

describe('validator: a fleet of mailboxes', () => {
  const context = useHarness();
  const { harness } = context;

  it(`validates ${FLEET} mailboxes in one run, never more at once than its concurrency`, async () => {
    const addresses = Array.from({ length: FLEET }, (_, index) => `user${index}@example.com`);
    await mapConcurrent(addresses, 20, (address) => harness.connectMailbox(address, 'google'));
    const validator = newValidator(harness, { config: { concurrency: 10 } });

    const summary = await validator.validateNow({});

    assert.equal(summary.validated, FLEET, 'every page of the listing was read');
    assert.equal(summary.healthy, FLEET);
    assert.equal(harness.oauth.google.tokenRequests.length, FLEET);
    const { maxInFlight } = harness.oauth.google.load;
    const { maxOpen } = harness.smtp.google.stats;
    assert.ok(maxInFlight <= 10, `at most 10 token requests at once, saw ${maxInFlight}`);
    assert.ok(maxOpen <= 10, `at most 10 SMTP probes at once, saw ${maxOpen}`);
    assert.ok(maxOpen >= 5, `and they did run concurrently (${maxOpen} at once)`);
    assert.equal(harness.smtp.google.stats.authAttempts, FLEET, 'one SMTP probe each');
    console.log(`# validated ${FLEET} mailboxes in ${summary.durationMs} ms at concurrency 10`);
  });
});
