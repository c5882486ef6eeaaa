/**
 * A small web page over the local SMTP server's captured mail: the list, one message (text, or HTML
 * in a sandboxed frame), and its raw source.
 */
import { createServer, type Server } from 'node:http';
import { escapeHtml } from '../functions/shared/html.ts';
import { listen } from './world/listen.ts';
import { loopbackOnly } from './world/loopback-host.ts';

export interface CapturedMail {
  readonly user: string;
  readonly mailFrom: string;
  readonly rcptTo: string[];
  readonly raw: string;
  readonly messageId: string | undefined;
  readonly startedAt: number;
  readonly parsed: { subject?: string | undefined; text?: string | undefined; html?: string | undefined };
}

const STYLE =
  'body{font-family:system-ui,sans-serif;margin:2rem;color:#1a1a1a}table{border-collapse:collapse;width:100%}' +
  'td,th{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ddd}pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem}' +
  'iframe{width:100%;height:60vh;border:1px solid #ddd}';
const page = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;

/** Serves the page on 127.0.0.1, to requests addressed to a loopback name only (others get 421). */
export async function serveMailViewer(
  messages: () => readonly CapturedMail[],
  port = 0,
): Promise<{ url: string; server: Server }> {
  const server = createServer(
    loopbackOnly((request, response) => {
      const url = new URL(request.url ?? '/', 'http://local');
      const list = messages();
      const match = /^\/messages\/(\d+)(\/raw)?$/.exec(url.pathname);
      const headers = {
        'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'",
        'cache-control': 'no-store',
      };
      if (url.pathname === '/') {
        const rows = list
          .map(
            (mail, index) =>
              `<tr><td>${new Date(mail.startedAt).toLocaleTimeString()}</td><td>${escapeHtml(mail.user)}</td><td>${escapeHtml(mail.rcptTo.join(', '))}</td><td><a href="/messages/${index}">${escapeHtml(mail.parsed.subject ?? '(no subject)')}</a></td></tr>`,
          )
          .reverse()
          .join('');
        response.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8', refresh: '5' });
        response.end(
          page(
            'Captured mail',
            `<h1>Captured mail (${list.length})</h1><table><tr><th>Time</th><th>From mailbox</th><th>To</th><th>Subject</th></tr>${rows}</table>`,
          ),
        );
        return;
      }
      const mail = match ? list[Number(match[1])] : undefined;
      if (!mail) {
        response.writeHead(404, { 'content-type': 'text/plain' });
        response.end('no such message');
        return;
      }
      if (match?.[2]) {
        response.writeHead(200, { ...headers, 'content-type': 'text/plain; charset=utf-8' });
        response.end(mail.raw);
        return;
      }
      const body = mail.parsed.html
        ? `<iframe sandbox srcdoc="${escapeHtml(mail.parsed.html)}"></iframe>`
        : `<pre>${escapeHtml(mail.parsed.text ?? '')}</pre>`;
      response.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' });
      response.end(
        page(
          mail.parsed.subject ?? 'Message',
          `<p><a href="/">All mail</a> · <a href="/messages/${match![1]}/raw">Raw source</a></p><h1 id="subject">${escapeHtml(mail.parsed.subject ?? '(no subject)')}</h1><p>From mailbox <b>${escapeHtml(mail.user)}</b> to ${escapeHtml(mail.rcptTo.join(', '))}<br>Message-ID ${escapeHtml(mail.messageId ?? '')}</p>${body}`,
        ),
      );
    }),
  );
  return { url: `http://127.0.0.1:${await listen(server, port)}`, server };
}
