/**
 * IAM in front of the emulator, which enforces none (moto's own check ignores resources and conditions):
 * an HTTP proxy that forwards every request, and for a request signed by a role session it handed out
 * first decides it as IAM would, from the policies `cdk deploy` left in the emulator (the role's own, the
 * key policy; the bucket, queue or topic policy of the template), and answers a denied one with
 * AccessDenied as AWS does.
 * Requests of the test's administrator (the emulator's `testing` key) pass unjudged; any other key, or
 * none, is refused as a call the audit cannot place.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { GetRoleCommand } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { POLLER_USER_AGENT } from '../../event-source/mapping-state.ts';
import { relay } from '../http-relay.ts';
import { listen } from '../listen.ts';
import { emulatorLookups } from './emulator-lookups.ts';
import { decide, type Permission, principalContext, type SessionPrincipal } from './policy-evaluation.ts';
import { permissionsOf, type SeenRequest } from './request-permissions.ts';
import type { TemplateSettings } from './template-settings.ts';

/** The key the tests and the emulator's administration sign with (world.awsEnv()). */
const ADMINISTRATOR_KEY = 'testing';

export interface Denial {
  /** The role session that asked. */
  readonly session: string;
  /** The API call, as `service.Operation` or `METHOD /bucket/key`. */
  readonly call: string;
  readonly action: string;
  readonly resource: string;
  readonly reason: string;
}

/** A role session the audit judges: its ARN, and its credentials as Lambda puts them in the environment. */
export interface RoleSession {
  readonly sessionArn: string;
  readonly env: {
    readonly AWS_ACCESS_KEY_ID: string;
    readonly AWS_SECRET_ACCESS_KEY: string;
    readonly AWS_SESSION_TOKEN: string;
  };
}

export interface AccessAudit {
  /** Where the functions send their AWS calls (AWS_ENDPOINT_URL). */
  readonly endpoint: string;
  /** Every request decided as denied since the start, answered AccessDenied. */
  readonly denials: Denial[];
  /** Requests of a role session the audit could not read (`<session> <call>: why`): each a gap to teach it, never passed. */
  readonly unreadable: string[];
  /** Per role session, the `action resource` pairs it was allowed. */
  readonly allowed: Map<string, Set<string>>;
  /**
   * A session of the role, as Lambda gives its function (`function: true`: its queue mapping's state is
   * read by the poller, unjudged) or as a person assumes it: the credentials for its environment.
   */
  sessionOf(roleArn: string, sessionName: string, options?: { function?: boolean }): Promise<RoleSession>;
  stop(): Promise<void>;
}

const bodyOf = (incoming: IncomingMessage) =>
  new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => resolve(Buffer.concat(chunks)));
    incoming.on('error', reject);
  });

/** The access key and the service a request is signed with (an Authorization header, or a presigned URL). */
function signedBy(incoming: IncomingMessage, query: URLSearchParams) {
  const credential =
    /Credential=([^,\s]+)/.exec(String(incoming.headers.authorization ?? ''))?.[1] ??
    query.get('X-Amz-Credential') ??
    '';
  const [accessKeyId = '', , , service = ''] = credential.split('/');
  return { accessKeyId, service };
}

/** AccessDenied in the form each protocol answers it. */
function answerDenied(outgoing: ServerResponse, request: SeenRequest, message: string): void {
  const xml = (error: string) => `<?xml version="1.0" encoding="UTF-8"?>${error}`;
  const escaped = message.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const [status, headers, body] =
    // Lambda's REST API answers in JSON, its error type in a header.
    request.service === 'lambda'
      ? [
          403,
          { 'content-type': 'application/json', 'x-amzn-errortype': 'AccessDeniedException' },
          JSON.stringify({ Type: 'User', message }),
        ]
      : typeof request.headers['x-amz-target'] === 'string'
        ? [
            400,
            { 'content-type': 'application/x-amz-json-1.0' },
            JSON.stringify({ __type: 'com.amazon.coral.service#AccessDeniedException', message }),
          ]
        : String(request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')
          ? [
              403,
              { 'content-type': 'text/xml' },
              xml(
                `<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code><Message>${escaped}</Message></Error></ErrorResponse>`,
              ),
            ]
          : [
              403,
              { 'content-type': 'application/xml' },
              xml(`<Error><Code>AccessDenied</Code><Message>${escaped}</Message></Error>`),
            ];
  outgoing.writeHead(status, headers).end(body);
}

/**
 * @param target the emulator's endpoint
 * @example
 * const audit = await startAccessAudit(moto.endpoint, { region: 'eu-west-1', account: '123456789012' });
 * const { env } = await audit.sessionOf(senderRoleArn, 'sender');
 * startFunction({ ...env, AWS_ENDPOINT_URL: audit.endpoint });
 */
export async function startAccessAudit(
  target: string,
  options: {
    region: string;
    account: string;
    /** What the deployed template sets that moto drops (templateSettingsOf). */
    settings: TemplateSettings;
  },
): Promise<AccessAudit> {
  const upstream = new URL(target);
  const look = emulatorLookups(target, options.region, options.account, options.settings);
  const sessions = new Map<string, SessionPrincipal & { roleName: string; function: boolean }>();
  const sts = new STSClient({
    endpoint: target,
    region: options.region,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });

  /** @returns why IAM denies the permissions, or undefined where it allows them all */
  async function judgePermissions(
    principal: SessionPrincipal & { roleName: string },
    permissions: Permission[],
  ) {
    const identity = await look.identityPolicies(principal.roleName);
    for (const permission of permissions) {
      const withPrincipal = {
        ...permission,
        context: { ...principalContext(principal), ...permission.context },
      };
      const decision = decide(principal, withPrincipal, identity, await look.resourcePolicy(permission));
      if (!decision.allowed)
        return { action: permission.action, resource: permission.resource, reason: decision.reason };
    }
    const seen = audit.allowed.get(principal.sessionArn) ?? new Set<string>();
    for (const permission of permissions) seen.add(`${permission.action} ${permission.resource}`);
    audit.allowed.set(principal.sessionArn, seen);
    return undefined;
  }

  /** Decides the call: AccessDenied written and true where IAM denies it (or the audit cannot read it). */
  async function refuse(
    principal: SessionPrincipal & { roleName: string },
    call: string,
    request: SeenRequest,
    outgoing: ServerResponse,
    permissions: () => Promise<Permission[]>,
  ): Promise<boolean> {
    const denial = await permissions()
      .then(async (needed) => {
        const denial = await judgePermissions(principal, needed);
        if (denial) audit.denials.push({ session: principal.sessionArn, call, ...denial });
        return denial;
      })
      .catch((error: Error) => {
        audit.unreadable.push(`${principal.sessionArn} ${call}: ${error.message}`);
        return { action: 'an action the audit cannot read', resource: 'it', reason: error.message };
      });
    if (!denial) return false;
    answerDenied(
      outgoing,
      request,
      `User: ${principal.sessionArn} is not authorized to perform: ${denial.action} on resource: ${denial.resource} (${denial.reason})`,
    );
    return true;
  }

  const server: Server = createServer(async (incoming, outgoing) => {
    try {
      const body = await bodyOf(incoming);
      const url = new URL(incoming.url ?? '/', 'http://audit');
      const signed = signedBy(incoming, url.searchParams);
      const request: SeenRequest = {
        service: signed.service,
        method: incoming.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: incoming.headers,
        body: body.toString('utf8'),
      };
      const principal = sessions.get(signed.accessKeyId);
      const call = `${signed.service} ${String(incoming.headers['x-amz-target'] ?? `${request.method} ${request.path}`)}`;
      if (!principal && signed.accessKeyId !== ADMINISTRATOR_KEY) {
        audit.unreadable.push(
          `${signed.accessKeyId || 'unsigned'} ${call}: credentials the audit did not hand out`,
        );
        answerDenied(outgoing, request, 'credentials the access audit did not hand out');
        return;
      }
      // The event-source runner reads its mapping's state as Lambda's poller does: the service's read, not
      // the function's call (which is judged, as every other call of a session).
      const pollersRead =
        principal?.function === true &&
        String(incoming.headers['user-agent'] ?? '').includes(POLLER_USER_AGENT) &&
        signed.service === 'lambda' &&
        request.method === 'GET' &&
        /^\/2015-03-31\/event-source-mappings\/[^/]+$/.test(request.path);
      if (
        principal &&
        !pollersRead &&
        (await refuse(principal, call, request, outgoing, () => permissionsOf(look.resources, request)))
      )
        return;
      relay(upstream, incoming, outgoing, {
        body,
        answered: async (answer) => {
          // S3 tells a caller an object is missing only if it may list the bucket; else 403 (GetObject API).
          const missingObject =
            principal &&
            signed.service === 's3' &&
            answer.statusCode === 404 &&
            (request.method === 'GET' || request.method === 'HEAD');
          if (missingObject) {
            const bucket = request.path.split('/')[1]!;
            const listing: Permission = {
              action: 's3:ListBucket',
              resource: `arn:aws:s3:::${bucket}`,
              context: {},
            };
            if (await refuse(principal, call, request, outgoing, async () => [listing])) return true;
          }
          if (signed.service === 's3' && request.method === 'PUT' && answer.statusCode === 200) {
            const [, bucket = '', ...key] = request.path.split('/');
            look.recordPut(bucket, decodeURIComponent(key.join('/')), (name) => {
              const value = incoming.headers[name];
              return Array.isArray(value) ? value[0] : value;
            });
          }
          return false;
        },
      });
    } catch {
      outgoing.destroy();
    }
  });
  const port = await listen(server);

  const audit: AccessAudit = {
    endpoint: `http://127.0.0.1:${port}`,
    denials: [],
    unreadable: [],
    allowed: new Map(),
    async sessionOf(roleArn, sessionName, { function: asFunction = false } = {}) {
      const { Credentials, AssumedRoleUser } = await sts.send(
        new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: sessionName }),
      );
      const roleName = roleArn.split('/').pop()!;
      const { Role } = await look.iam.send(new GetRoleCommand({ RoleName: roleName }));
      sessions.set(Credentials!.AccessKeyId!, {
        roleName,
        function: asFunction,
        roleArn: Role!.Arn!,
        sessionArn: AssumedRoleUser!.Arn!,
        account: options.account,
        userid: `${Role!.RoleId}:${sessionName}`,
      });
      return {
        sessionArn: AssumedRoleUser!.Arn!,
        env: {
          AWS_ACCESS_KEY_ID: Credentials!.AccessKeyId!,
          AWS_SECRET_ACCESS_KEY: Credentials!.SecretAccessKey!,
          AWS_SESSION_TOKEN: Credentials!.SessionToken!,
        },
      };
    },
    stop: async () => {
      sts.destroy();
      look.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return audit;
}
