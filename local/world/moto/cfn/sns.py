"""AWS::SNS::TopicPolicy, which moto 5.2.5 skips. Here it is each topic's Policy attribute in moto's SNS
(GetTopicAttributes shows it; moto enforces no policy), back to the default policy on delete, as in SNS.
Ref and Fn::GetAtt Id: the policy's generated id.
"""
import json

from moto.core.common_models import CloudFormationModel
from moto.sns.models import sns_backends

from .model import Model


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
