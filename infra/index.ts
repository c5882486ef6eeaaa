/** `oauth-mailer/cdk`: the construct platform teams add to their own stacks, and its parts' types. */
export { OAuthMailer } from './oauth-mailer.ts';
export { type OAuthMailerProps, OAuthMailerPropsError, type OperatorGrant } from './oauth-mailer-props.ts';
export { OAuthMailerStack, type OAuthMailerStackProps } from './oauth-mailer-stack.ts';
export type { ProducerGrant } from './sender/producer-rules.ts';
export { OPERATOR_DUTIES, type OperatorDuty } from './shared/operator-access.ts';
