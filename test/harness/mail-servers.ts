/**
 * Registers a real mail world for a test file: an OAuth server, Dovecot checking its tokens and holding
 * the Maildirs, and Postfix submitting through them (STARTTLS, XOAUTH2). Started once before the file's
 * tests, stopped after them; read its parts inside hooks and tests.
 */
import { after, before } from 'node:test';
import { type Dovecot, startDovecotFor } from '../../local/world/dovecot.ts';
import { type OAuthServer, startOAuthServer } from '../../local/world/oauth-server.ts';
import { type Postfix, type PostfixOptions, startPostfix } from '../../local/world/postfix.ts';
import { type TestCertificates, testCertificates } from '../../local/world/tls.ts';

export interface MailServers {
  readonly certificates: TestCertificates;
  readonly oauth: OAuthServer;
  readonly dovecot: Dovecot;
  readonly postfix: Postfix;
}

export function useMailServers(options: Omit<PostfixOptions, 'dovecot' | 'tls'> = {}): MailServers {
  const servers: { -readonly [K in keyof MailServers]?: MailServers[K] } = {};
  before(async () => {
    const certificates = await testCertificates();
    const oauth = await startOAuthServer({ profile: 'google' });
    const dovecot = await startDovecotFor(oauth, certificates);
    Object.assign(servers, { certificates, oauth, dovecot });
    servers.postfix = await startPostfix({ dovecot, tls: certificates, ...options });
  });
  after(async () => {
    await servers.postfix?.stop();
    await servers.dovecot?.stop();
    await servers.oauth?.stop();
  });
  return servers as MailServers;
}
