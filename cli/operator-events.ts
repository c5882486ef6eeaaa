/**
 * Every incident command (pause, resume, revoke, rotate, cut off) ends by publishing what it did on the
 * operators' topic, with who did it as AWS knows the caller, so the people on call share one record.
 */
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { onDemandSns } from '../functions/shared/aws/on-demand.ts';
import { Notifier, type OperatorAction } from '../functions/shared/observability/notifier.ts';
import type { Target } from './target.ts';

/** Publishes the action; true when published (false: the target names no operators' topic). */
export async function announce(target: Target, action: Omit<OperatorAction, 'by'>): Promise<boolean> {
  if (!target.alertTopicArn) return false;
  const by = await new STSClient({})
    .send(new GetCallerIdentityCommand({}))
    .then((identity) => identity.Arn)
    .catch(() => undefined);
  return new Notifier(onDemandSns(), target.alertTopicArn, target.connectBaseUrl).operatorAction({
    ...action,
    by,
  });
}
