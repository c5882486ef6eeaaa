/** Raw HTTP for tests where fetch falls short. */
import { request } from 'node:http';

/** A GET with the Host header a browser would send for `host` (fetch cannot set it); redirects not followed. */
export function getWithHost(
  url: string,
  host: string,
): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { headers: { host } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, type: response.headers['content-type'] ?? '', body }),
      );
    })
      .on('error', reject)
      .end();
  });
}
