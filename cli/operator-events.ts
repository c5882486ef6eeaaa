/**
 * Every incident command (pause, resume, revoke, rotate, cut off) ends by publishing what it did on the
 * operators' topic, with who did it as AWS knows the caller, so the people on call share one record.
 */
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { onDemandSns } from '../functions/shared/aws/on-demand.ts';
import { Notifier, type OperatorAction } from '../functions/shared/observability/notifier.ts';
import type { Target } from './target.ts';

/** The caller as AWS knows it (an ARN), or undefined when STS cannot tell. */
export const operatorArn = (): Promise<string | undefined> =>
  new STSClient({})
    .send(new GetCallerIdentityCommand({}))
    .then((identity) => identity.Arn)
    .catch(() => undefined);

/** Publishes the action; true when published (false: the target names no operators' topic). */
export async function announce(
  target: Target,
  action: Omit<OperatorAction, 'by'>,
  by?: string,
): Promise<boolean> {
  if (!target.alertTopicArn) return false;
  return new Notifier(onDemandSns(), target.alertTopicArn, target.connectBaseUrl).operatorAction({
    ...action,
    by: by ?? (await operatorArn()),
  });
}
