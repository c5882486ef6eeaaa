/**
 * Debian's Postfix 3.7 as a test instance: an MX-like submission service on a free loopback port
 * (STARTTLS with the harness certificate, SMTP AUTH checked by Dovecot's auth service, so XOAUTH2
 * bearer tokens are introspected live), with its own config, queue and data directories in a temp dir.
 *
 * Routing, by recipient domain:
 * - the mailbox domains: Dovecot's delivery agent (dovecot-lda, through pipe(8)) writes into Dovecot's
 *   Maildirs as Dovecot's mail user (virtual(8) cannot: it takes no `$1` and no tcp/socketmap table
 *   for the per-address Maildir path);
 * - the bounce domains: relayed to a second smtpd of the same instance (another loopback port, another
 *   host name) that answers `550 5.1.1` at RCPT, so Postfix writes a real RFC 3464 bounce (DSN) to the
 *   envelope sender;
 * - the deferral domains: the same listener answers `452 4.2.2`; the message stays queued and a delay
 *   DSN goes to the sender after `delayWarningSeconds`;
 * - the refused domains: refused at submission, at RCPT TO, with `550 5.1.1` (Gmail refuses a
 *   recipient it knows does not exist there and then), one recipient at a time;
 * - anything else: the capture user's Maildir (`captureMaildir`, readable as CAPTURE_USER over IMAP too).
 *
 * Nothing touches /etc/postfix's instance: every command gets `-c <dir>`, and nothing uses DNS.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Dovecot } from './dovecot.ts';
import { inTempDir, startForegroundDaemon } from './foreground-daemon.ts';
import { freePort } from './free-port.ts';
import { POSTFIX_PATH } from './mail-servers.ts';

const run = promisify(execFile);
const DOVECOT_LDA_PATH = '/usr/lib/dovecot/dovecot-lda';
/** The Dovecot user whose Maildir receives mail for other domains. */
export const CAPTURE_USER = 'capture';

export interface PostfixOptions {
  /** The Dovecot instance whose auth service checks SMTP AUTH and whose Maildirs receive mail. */
  readonly dovecot: Dovecot;
  /** Server certificate and key, PEM (testCertificates()). */
  readonly tls: { readonly key: string; readonly cert: string };
  /** Domains delivered into Dovecot. @default ['mailbox.test'] */
  readonly mailboxDomains?: readonly string[];
  /** Domains whose every recipient is refused with 550 5.1.1 by the next hop. @default ['bounces.test'] */
  readonly bounceDomains?: readonly string[];
  /** Domains whose every recipient is refused with 452 4.2.2 (mailbox full). @default ['deferred.test'] */
  readonly deferralDomains?: readonly string[];
  /** Domains whose recipients the submission service itself refuses, 550 5.1.1 at RCPT. @default ['refused.test'] */
  readonly refusedDomains?: readonly string[];
  /** The largest message taken, bytes (advertised as SIZE; Gmail's is 35,882,577). @default 10,240,000 (Postfix's) */
  readonly messageSizeLimit?: number;
  /**
   * When a delay DSN goes out for a deferred message (seconds work; Postfix's bounce daemon logs a
   * harmless warning that its template says "0 hour(s)"). @default 0 (never)
   */
  readonly delayWarningSeconds?: number;
}

export interface Postfix {
  readonly host: '127.0.0.1';
  /** Submission with STARTTLS and AUTH (XOAUTH2, OAUTHBEARER). */
  readonly port: number;
  /** The next hop of the bounce and deferral domains (the refusing smtpd). */
  readonly refusingPort: number;
  readonly dir: string;
  /** Postfix's log (maillog_file). */
  readonly logPath: string;
  /** Where mail for other domains goes. */
  readonly captureMaildir: string;
  log(): string;
  /** Whether no message waits in any queue (incoming, active, deferred). */
  queueIsEmpty(): Promise<boolean>;
  /** Retries deferred mail now (postqueue -f). */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

const MASTER_CF = (
  port: number,
  refusingPort: number,
  dovecot: Dovecot,
) => `# A test instance: no chroot, nothing but what the tests use.
127.0.0.1:${port} inet n - n - - smtpd
127.0.0.1:${refusingPort} inet n - n - - smtpd
  -o myhostname=mx.refusing.test
  -o smtpd_sasl_auth_enable=no
  -o smtpd_tls_security_level=none
  -o smtpd_relay_restrictions=$refusing_relay_restrictions
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
# Dovecot's own delivery agent (dovecot-core) writes into the Maildirs, as Dovecot's mail user.
dovecot unix - n n - - pipe flags=DRhu user=${dovecot.mailUser}
  argv=${DOVECOT_LDA_PATH} -c ${dovecot.configPath} -e -f \${sender} -a \${original_recipient} -d \${recipient}
capture unix - n n - - pipe flags=DRhu user=${dovecot.mailUser}
  argv=${DOVECOT_LDA_PATH} -c ${dovecot.configPath} -e -f \${sender} -a \${original_recipient} -d ${CAPTURE_USER}
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
`;

/**
 * Starts a Postfix instance and waits until it accepts connections.
 * @example
 * const postfix = await startPostfix({ dovecot, tls: await testCertificates() });
 */
export function startPostfix(options: PostfixOptions): Promise<Postfix> {
  return inTempDir('postfix-', (dir) => startIn(dir, options));
}

/** Starts the instance with everything in dir (the caller removes dir when this throws). */
async function startIn(dir: string, options: PostfixOptions): Promise<Postfix> {
  const { dovecot } = options;
  const mailboxDomains = options.mailboxDomains ?? ['mailbox.test'];
  const bounceDomains = options.bounceDomains ?? ['bounces.test'];
  const deferralDomains = options.deferralDomains ?? ['deferred.test'];
  const refusedDomains = options.refusedDomains ?? ['refused.test'];
  chmodSync(dir, 0o755);
  // Apart, as in /etc/postfix, /var/spool/postfix and /var/lib/postfix: postfix-script's checks want
  // the config directory all root's, the queue and data directories Postfix's.
  const configDir = join(dir, 'etc');
  const queueDir = join(dir, 'spool');
  const dataDir = join(dir, 'lib');
  mkdirSync(configDir, { mode: 0o755 });
  mkdirSync(queueDir, { mode: 0o755 });
  mkdirSync(dataDir, { mode: 0o700 });
  if (process.getuid?.() === 0) chownSync(dataDir, Number(execFileSync('id', ['-u', 'postfix'])), 0);
  const [port, refusingPort] = [await freePort(), await freePort()];
  const logPath = join(dir, 'maillog');
  writeFileSync(join(configDir, 'cert.pem'), options.tls.cert);
  writeFileSync(join(configDir, 'key.pem'), options.tls.key, { mode: 0o600 });
  const captureMaildir = dovecot.maildirOf(CAPTURE_USER);

  // Next hops: refused domains go to the refusing smtpd ([host] means no MX lookup).
  writeFileSync(
    join(configDir, 'transport'),
    [
      ...mailboxDomains.map((domain) => `${domain} dovecot:\n`),
      ...[...bounceDomains, ...deferralDomains].map(
        (domain) => `${domain} relay:[127.0.0.1]:${refusingPort}\n`,
      ),
    ].join(''),
  );
  writeFileSync(
    join(configDir, 'refused-recipients'),
    [
      ...bounceDomains.map((domain) => `${domain} 550 5.1.1 User unknown\n`),
      ...deferralDomains.map((domain) => `${domain} 452 4.2.2 Mailbox full\n`),
    ].join(''),
  );
  writeFileSync(
    join(configDir, 'submission-refusals'),
    refusedDomains.map((domain) => `${domain} 550 5.1.1 Recipient address rejected: User unknown\n`).join(''),
  );
  // The same tree Dovecot reads: <address, lower-case>/Maildir/ (a trailing slash means Maildir).

  writeFileSync(
    join(configDir, 'main.cf'),
    `# A test instance: everything under ${dir}.
compatibility_level = 3.6
queue_directory = ${queueDir}
data_directory = ${dataDir}
maillog_file = ${logPath}
# Postfix writes its log only under these (default /var, /dev/stdout).
maillog_file_prefixes = ${dir}
syslog_name = postfix-test
myhostname = mx.local.test
mydomain = local.test
myorigin = $myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtputf8_enable = no
# No DNS anywhere: next hops are [addresses], names resolve from /etc/hosts if at all.
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
smtpd_peername_lookup = no

# Submission: STARTTLS, then AUTH (Dovecot checks the bearer token), then relay for the authenticated.
smtpd_tls_security_level = may
smtpd_tls_cert_file = ${configDir}/cert.pem
smtpd_tls_key_file = ${configDir}/key.pem
smtpd_tls_session_cache_database =
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:${dovecot.authPort}
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = check_recipient_access texthash:${configDir}/submission-refusals
smtp_tls_security_level = none
# The refusing smtpd (master.cf) answers by recipient domain.
refusing_relay_restrictions = check_recipient_access texthash:${configDir}/refused-recipients, reject

transport_maps = texthash:${configDir}/transport
# Other domains (mail the tests send elsewhere) are captured, never looked up.
default_transport = capture
relay_transport = capture
dovecot_destination_recipient_limit = 1
capture_destination_recipient_limit = 1

# Quick queues for tests.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = ${options.delayWarningSeconds ?? 0}s
message_size_limit = ${options.messageSizeLimit ?? 10_240_000}
`,
  );
  writeFileSync(join(configDir, 'master.cf'), MASTER_CF(port, refusingPort, dovecot));

  const postfix = (args: string[]) => run(POSTFIX_PATH, ['-c', configDir, ...args]);
  // Creates the queue directories with their owners (postfix, postdrop).
  await postfix(['check']).catch((error: Error & { stderr?: string }) => {
    const log = (() => {
      try {
        return readFileSync(logPath, 'utf8');
      } catch {
        return '';
      }
    })();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`postfix check failed: ${error.stderr ?? ''}${log}`);
  });
  const log = () => {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };
  const stop = await startForegroundDaemon({
    name: 'postfix',
    command: POSTFIX_PATH,
    args: ['-c', configDir, 'start-fg'],
    dir,
    ports: [port, refusingPort],
    log,
    shutDown: (child) =>
      postfix(['stop']).then(
        () => undefined,
        () => void child.kill('SIGTERM'),
      ),
    abort: (child) => {
      try {
        execFileSync(POSTFIX_PATH, ['-c', configDir, 'abort'], { stdio: 'ignore' });
      } catch {
        child.kill('SIGKILL');
      }
    },
  });

  return {
    host: '127.0.0.1',
    port,
    refusingPort,
    dir,
    logPath,
    captureMaildir,
    log,
    async queueIsEmpty() {
      const { stdout } = await run('postqueue', ['-c', configDir, '-j']);
      return stdout.trim() === '';
    },
    async flush() {
      await run('postqueue', ['-c', configDir, '-f']);
    },
    stop,
  };
}
