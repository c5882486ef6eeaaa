/**
 * Debian's Dovecot 2.3 as a test instance: IMAP with implicit TLS (as imap.gmail.com:993) on a free
 * loopback port, logins by XOAUTH2 or OAUTHBEARER only, each bearer token checked live by RFC 7662
 * introspection at the local OAuth server (the `oauth2` passdb, no auth cache), and Maildirs under a
 * temp dir. Its auth service also listens on a loopback port speaking Dovecot's SASL protocol, so a
 * Postfix instance (postfix.ts) checks SMTP AUTH against the same tokens.
 *
 * Run as root, Dovecot keeps to its own unprivileged users (dovecot, dovenull) and reads and writes mail
 * as the dovecot user; every instance has its own base_dir, state_dir, log and ports, so test files in
 * parallel (and a system Dovecot, if any) never meet.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { chown, mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { inTempDir, startForegroundDaemon } from './foreground-daemon.ts';
import { freePort } from './free-port.ts';
import { DOVECOT_PATH } from './mail-servers.ts';
import { INTROSPECTION_CLIENT, type OAuthServer } from './oauth-server.ts';

export interface DovecotOptions {
  /** The OAuth server's RFC 7662 endpoint (OAuthServer.introspectionEndpoint). */
  readonly introspectionUrl: string;
  /** The client Dovecot introspects as, with client_secret_basic (INTROSPECTION_CLIENT). */
  readonly introspectionClient: { readonly id: string; readonly secret: string };
  /** Server certificate and key, PEM (testCertificates()). */
  readonly tls: { readonly key: string; readonly cert: string };
  /**
   * The introspection claim that must equal the login's user (compared lower-case).
   * @default 'sub' (the local OAuth server's account, which is the mailbox address in every profile)
   */
  readonly usernameAttribute?: string;
  /**
   * The SASL mechanisms offered. @default ['xoauth2', 'oauthbearer'] (Gmail's); Outlook's IMAP offers
   * XOAUTH2 only.
   */
  readonly mechanisms?: readonly ('xoauth2' | 'oauthbearer')[];
}

/** IMAP system flags, as Maildir file names carry them. */
export type MaildirFlag = '\\Seen' | '\\Answered' | '\\Flagged' | '\\Deleted' | '\\Draft';

export interface DeliverOptions {
  /** An IMAP folder other than INBOX (Maildir++: `.Folder`). @default 'INBOX' */
  readonly folder?: string;
  /** Flags the message already has (the file goes to cur/ instead of new/). @default none */
  readonly flags?: readonly MaildirFlag[];
}

export interface Dovecot {
  readonly host: '127.0.0.1';
  /** IMAP with implicit TLS. */
  readonly port: number;
  /** The auth service's inet listener (Dovecot SASL protocol), for `smtpd_sasl_path = inet:host:port`. */
  readonly authPort: number;
  /** The temp dir holding the config, the state and `mail/<address>/Maildir`. */
  readonly dir: string;
  /** The parent of every mailbox's home: Postfix's virtual_mailbox_base when it delivers here. */
  readonly mailRoot: string;
  /** dovecot.conf, for dovecot-lda (`-c`). */
  readonly configPath: string;
  /** The user mail is read and written as (Dovecot's own, `dovecot`, when run as root), and its ids. */
  readonly mailUser: string;
  readonly mailUid: number;
  readonly mailGid: number;
  readonly logPath: string;
  /**
   * Writes a message straight into the address's Maildir (no SMTP, no Dovecot process): quick enough
   * to seed 10,000. Resolves with the file's path.
   * @example await dovecot.deliver('ops@mailbox.test', 'Subject: hi\r\n\r\nbody\r\n')
   */
  deliver(address: string, raw: string | Buffer, options?: DeliverOptions): Promise<string>;
  /** The Maildir of an address (which need not exist yet). */
  maildirOf(address: string): string;
  /** Removes every mailbox (between tests; no session may be open). */
  empty(): void;
  /** Dovecot's log so far (for a failing test's message). */
  log(): string;
  stop(): Promise<void>;
}

const FLAG_LETTERS: Record<MaildirFlag, string> = {
  '\\Draft': 'D',
  '\\Flagged': 'F',
  '\\Answered': 'R',
  '\\Seen': 'S',
  '\\Deleted': 'T',
};

/** The uid and gid of a system user, as `id` reports them. */
function idsOf(user: string): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * Starts a Dovecot instance and waits until both ports accept connections.
 * @example
 * const dovecot = await startDovecot({
 *   introspectionUrl: oauth.introspectionEndpoint,
 *   introspectionClient: INTROSPECTION_CLIENT,
 *   tls: await testCertificates(),
 * });
 */
export function startDovecot(options: DovecotOptions): Promise<Dovecot> {
  return inTempDir('dovecot-', (dir) => startIn(dir, options));
}

/** A Dovecot that checks logins at this local OAuth server, as its mail server would. */
export function startDovecotFor(
  oauth: Pick<OAuthServer, 'introspectionEndpoint'>,
  tls: DovecotOptions['tls'],
  options: Pick<DovecotOptions, 'mechanisms'> = {},
): Promise<Dovecot> {
  return startDovecot({
    introspectionUrl: oauth.introspectionEndpoint,
    introspectionClient: INTROSPECTION_CLIENT,
    tls,
    ...options,
  });
}

/** Starts the instance with everything in dir (the caller removes dir when this throws). */
async function startIn(dir: string, options: DovecotOptions): Promise<Dovecot> {
  const root = process.getuid?.() === 0;
  const mechanisms = (options.mechanisms ?? ['xoauth2', 'oauthbearer']).join(' ');
  // As root, mail belongs to Dovecot's own user; unprivileged, to whoever runs the tests.
  const mailUser = root ? 'dovecot' : (process.env.USER ?? String(process.getuid!()));
  const { uid: mailUid, gid: mailGid } = root
    ? idsOf(mailUser)
    : { uid: process.getuid!(), gid: process.getgid!() };
  // Dovecot's unprivileged processes must reach their sockets and the mail under here.
  chmodSync(dir, 0o755);
  const mailRoot = join(dir, 'mail');
  for (const sub of ['run', 'state', 'mail']) mkdirSync(join(dir, sub), { mode: 0o755 });
  chownSync(mailRoot, mailUid, mailGid);
  const [port, authPort] = [await freePort(), await freePort()];
  const logPath = join(dir, 'dovecot.log');
  writeFileSync(join(dir, 'cert.pem'), options.tls.cert);
  writeFileSync(join(dir, 'key.pem'), options.tls.key, { mode: 0o600 });
  // dovecot-lda (Postfix's delivery into these Maildirs) runs as the mail user and reads the whole
  // config, the key included, and writes its own log.
  const ldaLogPath = join(dir, 'lda.log');
  writeFileSync(ldaLogPath, '');
  for (const file of ['key.pem', 'lda.log']) chownSync(join(dir, file), mailUid, mailGid);

  const url = new URL(options.introspectionUrl);
  url.username = encodeURIComponent(options.introspectionClient.id);
  url.password = encodeURIComponent(options.introspectionClient.secret);
  const oauth2Conf = join(dir, 'dovecot-oauth2.conf.ext');
  writeFileSync(
    oauth2Conf,
    [
      // POST token=... with HTTP Basic from the URL's userinfo: RFC 7662 with client_secret_basic.
      'introspection_mode = post',
      `introspection_url = ${url.href}`,
      `username_attribute = ${options.usernameAttribute ?? 'sub'}`,
      'username_format = %Lu',
      // A revoked or expired token introspects as {"active": false}: refused.
      'active_attribute = active',
      'active_value = true',
      'timeout_msecs = 5000',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const instance = `dovecot-test-${randomBytes(4).toString('hex')}`;
  const conf = join(dir, 'dovecot.conf');
  writeFileSync(
    conf,
    `# A test instance: everything under ${dir}.
instance_name = ${instance}
base_dir = ${dir}/run
state_dir = ${dir}/state
protocols = imap
listen = 127.0.0.1
log_path = ${logPath}
info_log_path = ${logPath}
auth_verbose = yes
${root ? '' : `default_internal_user = ${process.env.USER ?? 'nobody'}\ndefault_login_user = ${process.env.USER ?? 'nobody'}\n`}
ssl = required
ssl_cert = <${dir}/cert.pem
ssl_key = <${dir}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes

# Bearer tokens only, each introspected at every login.
auth_mechanisms = ${mechanisms}
auth_username_format = %Lu
auth_cache_size = 0
# Tests try bad tokens on purpose: no 2 s delay after a failure (0.5 s remain, Dovecot's timer step),
# and no per-IP penalty (2, 4, 8, 15 s before each later attempt from 127.0.0.1): without its anvil
# socket (mode 0: not created) the auth service runs with the penalty disabled.
auth_failure_delay = 0
passdb {
  driver = oauth2
  mechanisms = ${mechanisms}
  args = ${oauth2Conf}
}
userdb {
  driver = static
  # Any user exists (LDA looks users up with no passdb to ask).
  args = uid=${mailUid} gid=${mailGid} home=${mailRoot}/%Lu allow_all_users=yes
}
mail_location = maildir:${mailRoot}/%Lu/Maildir
first_valid_uid = ${mailUid}
last_valid_uid = ${mailUid}
first_valid_gid = ${mailGid}
last_valid_gid = ${mailGid}
postmaster_address = postmaster@mx.local.test
protocol lda {
  log_path = ${ldaLogPath}
  info_log_path = ${ldaLogPath}
}
namespace inbox {
  inbox = yes
  separator = /
  # Sent folders named as no client's fallback list names them, found only by their \\Sent flag
  # (RFC 6154, as Gmail's "[Gmail]/Sent Mail"); flagged once a test makes one. LIST sends the first as a
  # quoted string, the second (more than four quotes) as a literal.
  mailbox "Posted Mail" {
    special_use = \\Sent
  }
  mailbox Posted"""""Mail {
    special_use = \\Sent
  }
}

service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${port}
    ssl = yes
  }
}
service auth {
  inet_listener sasl {
    address = 127.0.0.1
    port = ${authPort}
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service stats {
  inet_listener http {
    port = 0
  }
}
`,
  );

  const log = () => {
    try {
      return readFileSync(logPath, 'utf8') + readFileSync(ldaLogPath, 'utf8');
    } catch {
      return '';
    }
  };
  const stop = await startForegroundDaemon({
    name: 'dovecot',
    command: DOVECOT_PATH,
    args: ['-F', '-c', conf],
    dir,
    ports: [port, authPort],
    log,
  });

  const maildirOf = (address: string) => join(mailRoot, address.toLowerCase(), 'Maildir');
  const madeDirs = new Set<string>();
  /** mkdir -p, owned by the mail user (chown only what this call made). */
  async function ensureDir(path: string) {
    if (madeDirs.has(path)) return;
    const first = await mkdir(path, { recursive: true, mode: 0o700 });
    if (first) {
      // Every level from the first one made down to path.
      for (let level = path; level.length >= first.length; level = join(level, '..')) {
        await chown(level, mailUid, mailGid);
      }
    }
    madeDirs.add(path);
  }
  let sequence = 0;

  return {
    host: '127.0.0.1',
    port,
    authPort,
    dir,
    configPath: conf,
    mailUser,
    mailRoot,
    mailUid,
    mailGid,
    logPath,
    maildirOf,
    log,
    stop,
    empty() {
      for (const entry of readdirSync(mailRoot))
        rmSync(join(mailRoot, entry), { recursive: true, force: true });
      madeDirs.clear();
    },
    async deliver(address, raw, deliverOptions = {}) {
      const folder = deliverOptions.folder ?? 'INBOX';
      const maildir =
        folder.toUpperCase() === 'INBOX' ? maildirOf(address) : join(maildirOf(address), `.${folder}`);
      for (const sub of ['tmp', 'new', 'cur']) await ensureDir(join(maildir, sub));
      if (folder.toUpperCase() !== 'INBOX' && !madeDirs.has(`${maildir}:folder`)) {
        await writeFile(join(maildir, 'maildirfolder'), '');
        await chown(join(maildir, 'maildirfolder'), mailUid, mailGid);
        madeDirs.add(`${maildir}:folder`);
      }
      const body = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
      const now = Date.now();
      // The classic unique name: seconds.M<micro>P<pid>Q<n>.<host>, with the size for Dovecot.
      const base = `${Math.floor(now / 1000)}.M${(now % 1000) * 1000}P${process.pid}Q${++sequence}.${hostname()},S=${body.length}`;
      const flags = [...new Set((deliverOptions.flags ?? []).map((flag) => FLAG_LETTERS[flag]))]
        .sort()
        .join('');
      const path = deliverOptions.flags?.length
        ? join(maildir, 'cur', `${base}:2,${flags}`)
        : join(maildir, 'new', base);
      await writeFile(path, body, { mode: 0o600 });
      await chown(path, mailUid, mailGid);
      return path;
    },
  };
}
