/**
 * An esbuild plugin that leaves out the parts of nodemailer the functions never reach (cold start is
 * billed): its MIME type registry, named-service table, DKIM signer, URL fetcher, HTTP proxy client and
 * connection URL parser. The functions use only its MIME composer (and the SMTP dot-stuffing stream);
 * they speak SMTP themselves (functions/shared/smtp/). The stand-ins are in
 * functions/shared/smtp/nodemailer-slim/.
 */
import { join } from 'node:path';
import type { Plugin } from 'esbuild';
import { projectRoot } from './paths.ts';

const NODEMAILER_ESM = '/nodemailer/dist/esm';

const slim = (name: string) =>
  join(projectRoot, 'functions', 'shared', 'smtp', 'nodemailer-slim', `${name}.ts`);

/** nodemailer's dist/esm modules (by path from dist/esm) and what replaces each. */
const NODEMAILER_STAND_INS: Readonly<Record<string, string>> = {
  'mime-funcs/mime-types.js': slim('mime-types'),
  'well-known/index.js': slim('well-known'),
  'dkim/index.js': slim('unbundled'),
  'fetch/index.js': slim('unbundled'),
  'smtp-connection/http-proxy-client.js': slim('unbundled'),
  'shared/url.js': slim('url'),
};

export const slimNodemailer: Plugin = {
  name: 'slim-nodemailer',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      const dir = args.resolveDir.replaceAll('\\', '/');
      const at = dir.lastIndexOf(NODEMAILER_ESM);
      if (at < 0) return undefined;
      const fromEsm = join(dir.slice(at + NODEMAILER_ESM.length), args.path)
        .replaceAll('\\', '/')
        .replace(/^\//, '');
      const standIn = NODEMAILER_STAND_INS[fromEsm];
      return standIn ? { path: standIn } : undefined;
    });
  },
};
