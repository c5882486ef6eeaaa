/**
 * IAM's decision on one request, for the access audit: an explicit Deny anywhere wins; a KMS key's own
 * policy must allow its use, directly or by trusting the account's IAM policies; elsewhere, in one
 * account, an identity policy or the resource's policy naming the principal allows. What this does not
 * know (a condition operator or key it was not taught) throws rather than guessing, so the audit is
 * never kinder than IAM. The rules: docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
 * and reference_policies_elements_condition_operators.html (a key absent from the request matches no
 * value, except that negated operators, ForAllValues and ...IfExists then hold, and Null tests presence).
 */

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Principal?: '*' | Record<string, string | string[]>;
  Condition?: Record<string, Record<string, string | string[] | boolean>>;
}

export interface PolicyDocument {
  Statement: PolicyStatement | PolicyStatement[];
}

/** An assumed-role session, as a Lambda function's role runs. */
export interface SessionPrincipal {
  /** arn:aws:iam::<account>:role/<name> */
  readonly roleArn: string;
  /** arn:aws:sts::<account>:assumed-role/<name>/<session> */
  readonly sessionArn: string;
  readonly account: string;
  /** `<role id>:<session>`, the aws:userid of the session */
  readonly userid: string;
}

/** One permission a request needs: an action on a resource, with the request's condition keys. */
export interface Permission {
  readonly action: string;
  readonly resource: string;
  readonly context: Readonly<Record<string, string | readonly string[]>>;
}

export type Decision = { allowed: true } | { allowed: false; reason: string };

/** The condition keys the audit knows how to fill; a policy that tests another one throws. */
const KNOWN_KEYS = [
  // aws:username is never filled: a role session has none, as in AWS.
  /^aws:(SecureTransport|userid|username|PrincipalArn|PrincipalAccount|PrincipalType|TagKeys|RequestTag\/.+)$/,
  /^kms:(ViaService|CallerAccount|EncryptionContextKeys|EncryptionContext:.+)$/,
  /^dynamodb:LeadingKeys$/,
  /^lambda:FunctionArn$/,
  /^secretsmanager:KmsKeyId$/,
  /^s3:(prefix|x-amz-server-side-encryption(-aws-kms-key-id|-customer-algorithm)?)$/,
];

/** @throws Error for a key the audit does not fill: an unfilled key would read as absent, kinder than IAM */
function knownKey(key: string): void {
  if (!KNOWN_KEYS.some((known) => known.test(key)))
    throw new Error(`the access audit cannot fill condition key ${key}`);
}

const list = (value: string | readonly string[] | undefined): string[] =>
  value === undefined ? [] : typeof value === 'string' ? [value] : [...value];

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A policy string as a regular expression: IAM's wildcards (`*` any run of characters, `?` one) and its
 * policy variables (`${aws:userid}` the request's value, taken literally; `${*}`, `${?}`, `${$}` the
 * character itself). @returns undefined where a variable's key is not in the request: nothing matches
 */
function patternOf(pattern: string, context: Permission['context'], ignoreCase = false): RegExp | undefined {
  let source = '';
  for (const [index, part] of pattern.split(/\$\{([^}]*)\}/).entries()) {
    if (index % 2 === 0) {
      source += literal(part).replace(/\\\*/g, '.*').replace(/\\\?/g, '.');
      continue;
    }
    if (part === '*' || part === '?' || part === '$') source += literal(part);
    else {
      knownKey(part);
      const value = context[part];
      if (typeof value !== 'string') return undefined;
      source += literal(value);
    }
  }
  return new RegExp(`^${source}$`, ignoreCase ? 'is' : 's');
}

/** Whether a value matches a policy string, its wildcards and policy variables. */
export function wildcard(
  pattern: string,
  value: string,
  ignoreCase = false,
  context: Permission['context'] = {},
): boolean {
  return patternOf(pattern, context, ignoreCase)?.test(value) ?? false;
}

/** A policy value with its variables replaced (for the equality operators). @returns undefined: a key absent */
function substituted(value: string, context: Permission['context']): string | undefined {
  let missing = false;
  const text = value.replace(/\$\{([^}]*)\}/g, (_, key: string) => {
    if (key === '*' || key === '?' || key === '$') return key;
    knownKey(key);
    const found = context[key];
    if (typeof found !== 'string') missing = true;
    return typeof found === 'string' ? found : '';
  });
  return missing ? undefined : text;
}

/** The context every request of a session carries (over TLS: the deployed functions call AWS by https). */
export function principalContext(principal: SessionPrincipal): Record<string, string> {
  return {
    'aws:SecureTransport': 'true',
    'aws:userid': principal.userid,
    'aws:PrincipalArn': principal.roleArn,
    'aws:PrincipalAccount': principal.account,
    'aws:PrincipalType': 'AssumedRole',
  };
}

/** Whether the request's value matches the policy's, its variables taken from the request's context. */
type Matcher = (policyValue: string, requestValue: string, context: Permission['context']) => boolean;

// Equality compares the policy value with its variables filled in, literally; the Like operators read
// wildcards in the policy's own text only, never in a variable's value.
const equals: Matcher = (p, r, context) => substituted(p, context) === r;
const equalsIgnoringCase: Matcher = (p, r, context) =>
  substituted(p, context)?.toLowerCase() === r.toLowerCase();
const like: Matcher = (p, r, context) => wildcard(p, r, false, context);

const MATCHERS: Record<string, { match: Matcher; negated: boolean }> = {
  StringEquals: { match: equals, negated: false },
  StringNotEquals: { match: equals, negated: true },
  StringEqualsIgnoreCase: { match: equalsIgnoringCase, negated: false },
  StringNotEqualsIgnoreCase: { match: equalsIgnoringCase, negated: true },
  StringLike: { match: like, negated: false },
  StringNotLike: { match: like, negated: true },
  ArnEquals: { match: like, negated: false },
  ArnLike: { match: like, negated: false },
  ArnNotEquals: { match: like, negated: true },
  ArnNotLike: { match: like, negated: true },
  Bool: { match: equalsIgnoringCase, negated: false },
};

/** One operator's test of one key. @throws Error for an operator or key the audit does not know */
function conditionHolds(
  operator: string,
  key: string,
  policyValues: string[],
  context: Permission['context'],
): boolean {
  knownKey(key);
  const present = Object.hasOwn(context, key);
  const values = list(context[key]);
  if (operator === 'Null') return policyValues.some((value) => (value === 'true') === !present);
  const [, set, base = '', ifExists] =
    /^(?:(ForAllValues|ForAnyValue):)?(.+?)(IfExists)?$/.exec(operator) ?? [];
  const matcher = MATCHERS[base];
  if (!matcher) throw new Error(`the access audit does not know condition operator ${operator}`);
  if (!present) return Boolean(ifExists) || set === 'ForAllValues' || (!set && matcher.negated);
  const one = (value: string) => {
    const matched = policyValues.some((policyValue) => matcher.match(policyValue, value, context));
    return matcher.negated ? !matched : matched;
  };
  if (set === 'ForAllValues') return values.every(one);
  if (set === 'ForAnyValue') return values.some(one);
  if (values.length > 1)
    throw new Error(
      `${operator} on ${key}, which holds several values here: IAM needs ForAllValues or ForAnyValue`,
    );
  return values.length > 0 && one(values[0]!);
}

function conditionsHold(statement: PolicyStatement, context: Permission['context']): boolean {
  return Object.entries(statement.Condition ?? {}).every(([operator, keys]) =>
    Object.entries(keys).every(([key, value]) =>
      conditionHolds(operator, key, list(typeof value === 'boolean' ? String(value) : value), context),
    ),
  );
}

/** Whether a resource policy's Principal names this session: itself, its role, everyone, or its account. */
function principalNamed(
  statement: PolicyStatement,
  principal: SessionPrincipal,
): 'session' | 'account' | false {
  if ('NotPrincipal' in statement) throw new Error('the access audit does not read NotPrincipal');
  const named = statement.Principal;
  if (named === undefined) return false;
  // Only what the stack's policies use: ARNs, account ids, "*" and service principals (never this session).
  const forms =
    named === '*' ? [] : Object.keys(named).filter((kind) => kind !== 'AWS' && kind !== 'Service');
  const odd = (named === '*' ? [] : list(named.AWS)).filter(
    (arn) => arn !== '*' && !arn.startsWith('arn:') && !/^\d{12}$/.test(arn),
  );
  if (forms.length > 0 || odd.length > 0)
    throw new Error(`the access audit does not read the principal ${JSON.stringify(named)}`);
  const aws = named === '*' ? ['*'] : list(named.AWS);
  if (aws.some((arn) => arn === '*' || arn === principal.roleArn || arn === principal.sessionArn))
    return 'session';
  if (aws.some((arn) => arn === principal.account || arn === `arn:aws:iam::${principal.account}:root`))
    return 'account';
  return false;
}

function applies(statement: PolicyStatement, permission: Permission): boolean {
  const actionMatches = (patterns: string | string[] | undefined) =>
    list(patterns).some((pattern) => wildcard(pattern, permission.action, true));
  const resourceMatches = (patterns: string | string[] | undefined) =>
    list(patterns).some((pattern) => wildcard(pattern, permission.resource, false, permission.context));
  const action =
    statement.Action !== undefined ? actionMatches(statement.Action) : !actionMatches(statement.NotAction);
  const resource =
    statement.Resource !== undefined
      ? resourceMatches(statement.Resource)
      : statement.NotResource !== undefined
        ? !resourceMatches(statement.NotResource)
        : true; // a key policy's statements may leave Resource out: the key itself
  return action && resource && conditionsHold(statement, permission.context);
}

const statementsOf = (document: PolicyDocument | undefined) =>
  list(document?.Statement as never) as unknown as PolicyStatement[];

const describe = (statement: PolicyStatement, where: string) =>
  `${where}${statement.Sid ? ` statement ${statement.Sid}` : ''}`;

/**
 * @param identity the role's policies, inline and managed
 * @param resourcePolicy the policy of the resource the permission is on, if it has one; a KMS key's is
 *   its key policy, which must allow the use itself or trust the account's IAM policies
 */
export function decide(
  principal: SessionPrincipal,
  permission: Permission,
  identity: readonly PolicyDocument[],
  resourcePolicy?: { document: PolicyDocument; kind: 'key' | 'resource' },
): Decision {
  const identityStatements = identity.flatMap(statementsOf);
  const resourceStatements = statementsOf(resourcePolicy?.document).filter((statement) =>
    principalNamed(statement, principal),
  );
  const deny =
    identityStatements.find((s) => s.Effect === 'Deny' && applies(s, permission)) ??
    resourceStatements.find((s) => s.Effect === 'Deny' && applies(s, permission));
  if (deny) return { allowed: false, reason: `explicitly denied by ${describe(deny, 'a policy')}` };
  const identityAllows = identityStatements.some((s) => s.Effect === 'Allow' && applies(s, permission));
  const resourceAllows = (whom: 'session' | 'account') =>
    resourceStatements.some(
      (s) => s.Effect === 'Allow' && principalNamed(s, principal) === whom && applies(s, permission),
    );
  if (resourcePolicy?.kind === 'key') {
    if (resourceAllows('session')) return { allowed: true };
    if (resourceAllows('account') && identityAllows) return { allowed: true };
    return {
      allowed: false,
      reason: resourceAllows('account')
        ? 'the key policy trusts IAM, and no identity policy allows it'
        : 'the key policy neither allows it nor trusts IAM to',
    };
  }
  if (identityAllows || resourceAllows('session')) return { allowed: true };
  return { allowed: false, reason: 'no policy allows it (implicit deny)' };
}
