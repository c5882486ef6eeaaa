"""SNS resources moto 5.2.5 skips (a Ref to one silently becomes null).

- AWS::SNS::TopicPolicy: here each topic's Policy attribute in moto's SNS (GetTopicAttributes shows it;
  moto enforces no policy), back to the default policy on delete, as in SNS. Ref and Fn::GetAtt Id:
  the policy's generated id.
- AWS::SNS::Subscription (the stack's alarmEmail): here a subscription in moto's SNS with its filter
  policy, raw delivery and redrive settings, unsubscribed on delete. Ref and Fn::GetAtt Arn: its ARN.
"""
import json

from moto.core.common_models import CloudFormationModel
from moto.sns.models import sns_backends

from .model import Model

_SUBSCRIPTION_ATTRIBUTES = ("DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy")


class TopicPolicy(Model, CloudFormationModel):
    TYPE = "AWS::SNS::TopicPolicy"
    ATTRIBUTES = {"Id": "name"}

    def create(self, properties):
        self.topics = [sns_backends[self.account_id][self.region_name].get_topic(arn) for arn in properties["Topics"]]
        for topic in self.topics:
            topic.policy = json.dumps(properties["PolicyDocument"])

    def delete(self, account_id, region_name):
        for topic in self.topics:
            topic._policy_json = topic._create_default_topic_policy(region_name, account_id, topic.name)


class Subscription(Model, CloudFormationModel):
    TYPE = "AWS::SNS::Subscription"
    ATTRIBUTES = {"Arn": "arn"}

    def create(self, properties):
        backend = sns_backends[self.account_id][self.region_name]
        self.arn = backend.subscribe(properties["TopicArn"], properties.get("Endpoint"), properties["Protocol"]).arn
        for name in _SUBSCRIPTION_ATTRIBUTES:
            if name in properties:
                value = properties[name]
                backend.set_subscription_attributes(self.arn, name, value if isinstance(value, str) else json.dumps(value))

    def delete(self, account_id, region_name):
        sns_backends[account_id][region_name].unsubscribe(self.arn)

    @property
    def physical_resource_id(self):
        return self.arn
