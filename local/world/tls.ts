/** A throwaway certificate authority and a loopback server certificate it signs, made at test time. */
import { generate } from 'selfsigned';

export interface TestCertificates {
  /** PEM of the CA that clients must trust (no rejectUnauthorized: false anywhere). */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

let cached: Promise<TestCertificates> | undefined;

/** One CA and certificate per test process: generating RSA keys is the slow part. */
export function testCertificates(): Promise<TestCertificates> {
  cached ??= (async () => {
    const now = new Date(Date.now() - 60_000);
    const later = new Date(Date.now() + 24 * 3600_000);
    const ca = await generate([{ name: 'commonName', value: 'oauth-mailer test CA' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      notBeforeDate: now,
      notAfterDate: later,
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      ],
    });
    const server = await generate([{ name: 'commonName', value: 'localhost' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      notBeforeDate: now,
      notAfterDate: later,
      ca: { key: ca.private, cert: ca.cert },
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    });
    return { ca: ca.cert, cert: server.cert, key: server.private };
  })();
  return cached;
}
