import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type FeedbackReport,
  MAX_RAW_BYTES,
  type ParsedFeedback,
  parseFeedback,
} from '../../../../functions/shared/feedback/delivery-report.ts';
import { speaksFor } from '../../../../functions/shared/feedback/report-origin.ts';

const fixture = (name: string) =>
  readFileSync(new URL(`../../../fixtures/feedback/${name}`, import.meta.url));
const parse = (name: string) => parseFeedback(fixture(name));
/** The report without its origin (the origin has tests of its own below). */
const reportOf = (parsed: ParsedFeedback): FeedbackReport => {
  assert.ok('report' in parsed, JSON.stringify(parsed));
  const { origin: _origin, ...report } = parsed.report;
  return report as FeedbackReport;
};
const bounceOf = (parsed: ParsedFeedback) => {
  const report = reportOf(parsed);
  assert.equal(report.kind, 'bounce');
  return report as Extract<FeedbackReport, { kind: 'bounce' }>;
};
const withLineEnds = (raw: Buffer, end: '\n' | '\r\n') =>
  Buffer.from(raw.toString('latin1').replace(/\r\n/g, '\n').replace(/\n/g, end), 'latin1');

/** A Postfix-shaped DSN around a delivery-status part the test supplies. */
const dsn = (status: string, contentType = 'multipart/report; report-type=delivery-status; boundary="b"') =>
  [
    'From: MAILER-DAEMON@mx.example.org',
    'To: ops@example.org',
    'Subject: Undelivered Mail Returned to Sender',
    'MIME-Version: 1.0',
    `Content-Type: ${contentType}`,
    '',
    '--b',
    'Content-Type: text/plain',
    '',
    'Delivery report.',
    '',
    '--b',
    'Content-Type: message/delivery-status',
    '',
    status,
    '--b--',
    '',
  ].join('\n');
const recipientBlock = (address: string, action = 'failed', status = '5.1.1') =>
  `Final-Recipient: rfc822; ${address}\nAction: ${action}\nStatus: ${status}\n`;

describe('Function: parseFeedback() with the DSNs providers and MTAs send', () => {
  it('reads a Gmail hard bounce: the folded 550-5.1.1 reply as one sentence, the original Message-ID', async () => {
    assert.deepEqual(reportOf(await parse('gmail-hard-bounce.eml')), {
      kind: 'bounce',
      originalMessageId: '<0123456789abcdef0123456789abcdef.oauth-mailer@example.com>',
      reportingMta: 'googlemail.com',
      arrivalDate: 'Tue, 04 Mar 2025 01:02:02 -0800 (PST)',
      recipients: [
        {
          recipient: 'no.such.user@gmail.com',
          action: 'failed',
          status: '5.1.1',
          bounce: 'hard',
          diagnostic:
            "550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser 41be03b00d2f7-af0d2a7c1b9si3161571a12.205 - gsmtp",
          remoteMta: 'gmail-smtp-in.l.google.com',
        },
      ],
    });
  });

  it('calls a Gmail delay a soft bounce, the original read from its headers part', async () => {
    assert.deepEqual(reportOf(await parse('gmail-delayed.eml')), {
      kind: 'bounce',
      originalMessageId: '<fedcba9876543210fedcba9876543210.oauth-mailer@example.com>',
      reportingMta: 'googlemail.com',
      arrivalDate: 'Tue, 04 Mar 2025 11:14:36 -0800 (PST)',
      recipients: [
        {
          recipient: 'greylisted@example.org',
          action: 'delayed',
          status: '4.7.1',
          bounce: 'soft',
          diagnostic: '451 4.7.1 Greylisted, please try again in 300 seconds',
          remoteMta: 'mx1.example.org',
        },
      ],
    });
  });

  it('reads a Microsoft 365 NDR (CRLF, HTML human part, a semicolon inside the diagnostic)', async () => {
    assert.deepEqual(reportOf(await parse('microsoft-365-ndr.eml')), {
      kind: 'bounce',
      originalMessageId: '<00112233445566778899aabbccddeeff.oauth-mailer@example.net>',
      reportingMta: 'DM6PR12MB4123.namprd12.prod.outlook.com',
      arrivalDate: 'Wed, 5 Mar 2025 10:21:29 +0000',
      recipients: [
        {
          recipient: 'former.employee@contoso.com',
          action: 'failed',
          status: '5.1.10',
          bounce: 'hard',
          diagnostic: '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup',
          remoteMta: 'BN8NAM12FT050.mail.protection.outlook.com',
        },
      ],
    });
  });

  it("keeps Exim's declared 5.0.0 over the code in its diagnostic", async () => {
    const report = reportOf(await parse('exim-dsn.eml'));
    assert.deepEqual(report, {
      kind: 'bounce',
      originalMessageId: '<2468ace02468ace02468ace02468ace0.oauth-mailer@example.com>',
      reportingMta: 'relay.example.com',
      recipients: [
        {
          recipient: 'jsmith@example.co.uk',
          action: 'failed',
          status: '5.0.0',
          bounce: 'hard',
          diagnostic:
            '550 5.1.1 <jsmith@example.co.uk>: Recipient address rejected: User unknown in virtual mailbox table',
          remoteMta: 'mx.example.co.uk',
        },
      ],
    });
  });

  it('lower-cases the domain of a Postfix recipient and keeps its local part', async () => {
    assert.deepEqual(reportOf(await parse('postfix-style-dsn.eml')), {
      kind: 'bounce',
      originalMessageId: '<13579bdf13579bdf13579bdf13579bdf.oauth-mailer@example.org>',
      reportingMta: 'mail.example.org',
      arrivalDate: 'Fri, 7 Mar 2025 14:03:20 +0100 (CET)',
      recipients: [
        {
          recipient: 'Mailbox.Full@example.net',
          action: 'failed',
          status: '5.2.2',
          bounce: 'hard',
          diagnostic: '552 5.2.2 <Mailbox.Full@Example.NET>: Recipient address rejected: Mailbox full',
          remoteMta: 'mx.example.net',
        },
      ],
    });
  });

  it('reads an RFC 6533 global DSN with a UTF-8 recipient and a message/global-headers original', async () => {
    assert.deepEqual(reportOf(await parse('global-delivery-status.eml')), {
      kind: 'bounce',
      originalMessageId: '<aaaabbbbccccddddeeeeffff00001111.oauth-mailer@example.com>',
      reportingMta: 'relay.example.com',
      recipients: [
        {
          recipient: 'josé@bücher.example',
          action: 'failed',
          status: '5.1.1',
          bounce: 'hard',
          diagnostic: '550 5.1.1 mailbox unavailable',
          remoteMta: 'mx.xn--bcher-kva.example',
        },
      ],
    });
  });

  it('decodes a base64 delivery-status part and a quoted-printable headers part; failed with 4.x.x is soft', async () => {
    assert.deepEqual(reportOf(await parse('base64-delivery-status.eml')), {
      kind: 'bounce',
      originalMessageId: '<5555666677778888999900001111aaaa.oauth-mailer@example.net>',
      reportingMta: 'gateway.example.net',
      arrivalDate: 'Wed, 12 Mar 2025 02:00:00 +0000',
      recipients: [
        {
          recipient: 'far.away@example.org',
          action: 'failed',
          status: '4.4.7',
          bounce: 'soft',
          diagnostic: '421 4.4.2 mx.example.org Error: timeout exceeded',
          remoteMta: 'mx.example.org',
        },
      ],
    });
  });

  it('lists the failed and the delayed recipient of a Sendmail DSN and leaves out the delivered one', async () => {
    const report = bounceOf(await parse('multi-recipient-dsn.eml'));
    assert.deepEqual(
      report.recipients.map((r) => [r.recipient, r.action, r.status, r.bounce]),
      [
        ['gone@example.net', 'failed', '5.1.1', 'hard'],
        ['slow@example.org', 'delayed', '4.4.1', 'soft'],
      ],
    );
  });

  it('reads the same report alike with CRLF or LF line ends', async () => {
    for (const name of ['gmail-hard-bounce.eml', 'microsoft-365-ndr.eml', 'outlook-jmrp-complaint.eml']) {
      const lf = await parseFeedback(withLineEnds(fixture(name), '\n'));
      assert.deepEqual(await parseFeedback(withLineEnds(fixture(name), '\r\n')), lf, name);
      assert.deepEqual(await parse(name), lf, name);
    }
  });

  it('accepts the message as a string as well as bytes', async () => {
    assert.deepEqual(
      await parseFeedback(fixture('exim-dsn.eml').toString('utf8')),
      await parse('exim-dsn.eml'),
    );
  });
});

describe('Function: parseFeedback() with complaints (ARF)', () => {
  it('keeps a Microsoft JMRP complaint whose recipient is redacted, with no recipients', async () => {
    assert.deepEqual(reportOf(await parse('outlook-jmrp-complaint.eml')), {
      kind: 'complaint',
      originalMessageId: '<89abcdef0123456789abcdef01234567.oauth-mailer@example.com>',
      feedbackType: 'abuse',
      recipients: [],
      userAgent: 'Hotmail FBL',
      arrivalDate: 'Sat, 08 Mar 2025 16:31:55 +0000',
      sourceIp: '198.51.100.7',
    });
  });

  it('reads a Yahoo complaint: recipient from Original-Rcpt-To, a quoted report-type, an IPv6 source', async () => {
    assert.deepEqual(reportOf(await parse('yahoo-arf-complaint.eml')), {
      kind: 'complaint',
      originalMessageId: '<0f1e2d3c4b5a69780f1e2d3c4b5a6978.oauth-mailer@example.com>',
      feedbackType: 'abuse',
      recipients: ['Reader.One@yahoo.com'],
      userAgent: 'Yahoo!-Mail-Feedback/2.0',
      arrivalDate: 'Sun, 9 Mar 2025 07:02:11 +0000',
      sourceIp: '2001:db8:10::25',
    });
  });

  it("names no recipient when there is no Original-Rcpt-To, never every address of the original's To header", async () => {
    const raw = fixture('yahoo-arf-complaint.eml')
      .toString('utf8')
      .replace('Original-Rcpt-To: Reader.One@yahoo.com\n', '')
      .replace('To: Reader.One@yahoo.com', 'To: "Reader One" <Reader.One@YAHOO.com>, second@yahoo.com');
    const report = reportOf(await parseFeedback(raw));
    assert.deepEqual(report.recipients, [], 'one complaint does not count against every addressee');
  });

  it('calls a feedback report without a Feedback-Type malformed', async () => {
    const raw = fixture('yahoo-arf-complaint.eml').toString('utf8').replace('Feedback-Type: abuse\n', '');
    assert.deepEqual(await parseFeedback(raw), { malformed: 'no valid Feedback-Type' });
  });
});

describe('Function: parseFeedback() with mail that is no report, or a broken or hostile one', () => {
  it('leaves ordinary mail alone, even one that carries a delivery-status part', async () => {
    assert.deepEqual(await parse('ordinary-mail.eml'), { notAReport: true });
    assert.deepEqual(await parseFeedback('Subject: hi\r\n\r\nHello'), { notAReport: true });
    assert.deepEqual(await parseFeedback(''), { notAReport: true });
  });

  it('leaves a read receipt (report-type=disposition-notification) alone', async () => {
    const receipt = dsn(
      'Reporting-UA: mail.example.org\nFinal-Recipient: rfc822; a@example.org\nDisposition: manual-action/MDN-sent-manually; displayed\n',
      'multipart/report; report-type=disposition-notification; boundary="b"',
    );
    assert.deepEqual(await parseFeedback(receipt), { notAReport: true });
  });

  it('calls a report without its delivery-status part malformed', async () => {
    assert.deepEqual(await parse('no-status-part.eml'), { malformed: 'no delivery-status part' });
  });

  it('derives a garbled status from the diagnostic and drops recipients it cannot read', async () => {
    const report = reportOf(await parse('garbage-status.eml'));
    assert.deepEqual(report, {
      kind: 'bounce',
      reportingMta: 'mx.example.org',
      recipients: [
        {
          recipient: 'first@example.net',
          action: 'failed',
          status: '5.1.1',
          bounce: 'hard',
          diagnostic: '550-5.1.1 No such user here Goodbye',
        },
        {
          recipient: 'second@example.net',
          action: 'failed',
          status: '4.0.0',
          bounce: 'soft',
          diagnostic: '452 Too many recipients',
        },
      ],
    });
  });

  it('calls a DSN none of whose recipients can be read malformed, with the first reason', async () => {
    const parsed = await parseFeedback(
      dsn(`Reporting-MTA: dns; mx\n\n${recipientBlock('a@example.org', 'failed', '5.1')}`),
    );
    assert.deepEqual(parsed, { malformed: 'recipient without a readable status' });
  });

  it('returns a bounce with no recipients when every recipient was delivered or relayed', async () => {
    const parsed = await parseFeedback(
      dsn(
        `Reporting-MTA: dns; mx.example.org\n\n${recipientBlock('a@example.org', 'delivered', '2.0.0')}\n${recipientBlock('b@example.org', 'relayed', '2.0.0')}`,
      ),
    );
    assert.deepEqual(reportOf(parsed), { kind: 'bounce', reportingMta: 'mx.example.org', recipients: [] });
  });

  it('drops NUL bytes from values and refuses an address that holds one', async () => {
    const report = reportOf(await parse('nul-bytes.eml'));
    assert.deepEqual(report, {
      kind: 'bounce',
      reportingMta: 'mx.example.org',
      recipients: [
        {
          recipient: 'victim@example.net',
          action: 'failed',
          status: '5.1.1',
          bounce: 'hard',
          diagnostic: '550 5.1.1 no suchuser',
        },
      ],
    });
  });

  it('calls multiparts nested 40 deep malformed', async () => {
    assert.deepEqual(await parse('deeply-nested.eml'), { malformed: 'MIME structure unreadable' });
  });

  it('reads at most 100 recipients of a DSN listing 10,000, quickly', async () => {
    const blocks = Array.from({ length: 10_000 }, (_, i) => recipientBlock(`user${i}@example.org`)).join(
      '\n',
    );
    const started = performance.now();
    const report = bounceOf(await parseFeedback(dsn(`Reporting-MTA: dns; mx.example.org\n\n${blocks}`)));
    assert.equal(report.recipients.length, 100);
    assert.equal(report.recipients.at(-1)?.recipient, 'user99@example.org');
    assert.ok(performance.now() - started < 2_000);
  });

  it('keeps a 64 KB field block from growing without bound', async () => {
    const longDiagnostic = `smtp; 550 5.1.1 ${'x'.repeat(200_000)}`;
    const report = bounceOf(
      await parseFeedback(
        dsn(
          `Reporting-MTA: dns; mx\n\n${recipientBlock('a@example.org')}Diagnostic-Code: ${longDiagnostic}\n`,
        ),
      ),
    );
    assert.deepEqual(report.recipients, [
      { recipient: 'a@example.org', action: 'failed', status: '5.1.1', bounce: 'hard' },
    ]);
  });

  it('considers only the first 2 MB of a message', async () => {
    const filler = `${'x'.repeat(76)}\n`.repeat(Math.ceil(MAX_RAW_BYTES / 77));
    const raw = dsn(`Reporting-MTA: dns; mx\n\n${recipientBlock('a@example.org')}`).replace(
      'Delivery report.',
      filler,
    );
    assert.deepEqual(await parseFeedback(raw), { malformed: 'no delivery-status part' });
  });

  it('does not let a field named __proto__ or constructor touch any object', async () => {
    const parsed = await parseFeedback(
      dsn(`__proto__: polluted\nconstructor: x\n\n__proto__: x\n${recipientBlock('a@example.org')}`),
    );
    assert.equal(reportOf(parsed).recipients.length, 1);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe('Function: parseFeedback() against generated hostile input', () => {
  const isOneOfTheShapes = (parsed: ParsedFeedback) =>
    ('report' in parsed && ['bounce', 'complaint'].includes(parsed.report.kind)) ||
    ('notAReport' in parsed && parsed.notAReport === true) ||
    ('malformed' in parsed && typeof parsed.malformed === 'string' && parsed.malformed.length < 80);

  it('answers arbitrary bytes with one of the three shapes, never throwing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4_000 }), async (bytes) =>
        isOneOfTheShapes(await parseFeedback(bytes)),
      ),
      { numRuns: 500 },
    );
  });

  const fixtures = [
    'gmail-hard-bounce.eml',
    'microsoft-365-ndr.eml',
    'global-delivery-status.eml',
    'base64-delivery-status.eml',
    'yahoo-arf-complaint.eml',
  ].map((name) => fixture(name));
  const mutation = fc.record({
    fixture: fc.constantFrom(...fixtures),
    edits: fc.array(
      fc.record({
        at: fc.nat(),
        remove: fc.nat({ max: 40 }),
        insert: fc.oneof(
          fc.uint8Array({ maxLength: 40 }),
          fc
            .constantFrom(
              '\r\n',
              '\n\n',
              '\0',
              ':',
              ';',
              '--',
              '\r\n ',
              'Content-Type: multipart/mixed; boundary=x\n\n',
            )
            .map((text) => new TextEncoder().encode(text)),
        ),
      }),
      { minLength: 1, maxLength: 8 },
    ),
  });

  it('answers mutated reports with one of the three shapes, each within 200 ms of CPU', async () => {
    await fc.assert(
      fc.asyncProperty(mutation, async ({ fixture: original, edits }) => {
        let bytes = Uint8Array.from(original);
        for (const { at, remove, insert } of edits) {
          const position = at % (bytes.length + 1);
          bytes = Buffer.concat([bytes.subarray(0, position), insert, bytes.subarray(position + remove)]);
        }
        // CPU, not wall time: a loaded machine's pauses are not the parser's. The process's CPU counts
        // its GC and compiler threads too, so a slow parse is measured again: a slow input is slow twice.
        const cpuMs = async () => {
          const started = process.cpuUsage();
          const parsed = await parseFeedback(bytes);
          const { user, system } = process.cpuUsage(started);
          return { parsed, ms: (user + system) / 1000 };
        };
        const first = await cpuMs();
        const fast = first.ms < 200 || (await cpuMs()).ms < 200;
        return isOneOfTheShapes(first.parsed) && fast;
      }),
      { numRuns: 500 },
    );
  });
});

describe('Function: parseFeedback() says who sent a report, as the provider stamped it', () => {
  it("believes Gmail's own mailer-daemon signed by googlemail.com, for any recipient", async () => {
    const { origin } = reportOf2(await parse('gmail-hard-bounce.eml'));
    assert.equal(origin?.stamped, true);
    assert.ok(origin?.authenticated.includes('googlemail.com'));
    assert.equal(speaksFor(origin!, 'no.such.user@gmail.com'), true);
    assert.equal(speaksFor(origin!, 'anyone@example.org'), true);
  });

  it('believes a report made inside the provider (no stamp), as Postfix and Exchange make their own', async () => {
    const { origin } = reportOf2(await parse('postfix-dsn.eml'));
    assert.equal(origin?.stamped, false);
    assert.equal(speaksFor(origin!, 'nobody@bounces.test'), true);
  });

  it("believes a stamped report only for recipients of the domain it authenticated as: a forger's SPF pass speaks for nobody else", async () => {
    const forged = `Authentication-Results: mx.google.com; spf=pass (google.com: domain of x@attacker.example designates 203.0.113.9) smtp.mailfrom=attacker.example; dkim=pass header.i=@attacker.example\r\nAuthentication-Results: mx.google.com; dkim=pass header.d=victim.example\r\n${fixture('postfix-style-dsn.eml').toString('latin1')}`;
    const { origin } = reportOf2(await parseFeedback(forged));
    assert.deepEqual(origin?.authenticated, ['attacker.example'], 'only the topmost stamp counts');
    assert.equal(speaksFor(origin!, 'ceo@victim.example'), false);
    assert.equal(speaksFor(origin!, 'someone@attacker.example'), true);
    assert.equal(speaksFor(origin!, 'someone@mail.attacker.example'), true);
  });

  it('matches an international recipient domain to the A-label its stamp names (DKIM d= and SPF are ASCII)', async () => {
    const stamped = `Authentication-Results: mx.google.com; dkim=pass header.d=xn--bcher-kva.example\r\n${fixture('postfix-style-dsn.eml').toString('latin1')}`;
    const { origin } = reportOf2(await parseFeedback(stamped));
    assert.equal(speaksFor(origin!, 'ops@bücher.example'), true);
    assert.equal(speaksFor(origin!, 'ops@BÜCHER.example'), true);
    assert.equal(speaksFor(origin!, 'ops@bucher.example'), false);
  });

  it('does not take a googlemail.com signature alone for Gmail: its From must be the mailer-daemon', async () => {
    const raw = fixture('gmail-hard-bounce.eml')
      .toString('latin1')
      .replace(
        'From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>',
        'From: A Person <someone@googlemail.com>',
      );
    const { origin } = reportOf2(await parseFeedback(raw));
    assert.equal(speaksFor(origin!, 'no.such.user@gmail.com'), false);
  });
});

function reportOf2(parsed: ParsedFeedback) {
  assert.ok('report' in parsed, JSON.stringify(parsed));
  return parsed.report;
}
