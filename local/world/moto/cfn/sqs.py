"""AWS::SQS::QueuePolicy, which moto 5.2.5 skips. Here it is each queue's Policy attribute in moto's SQS
(GetQueueAttributes shows it; moto enforces no policy), removed on delete. Ref and Fn::GetAtt Id: the
policy's generated id.
"""
import json

from moto.core.common_models import CloudFormationModel
from moto.sqs.models import sqs_backends

from .model import Model


class QueuePolicy(Model, CloudFormationModel):
    TYPE = "AWS::SQS::QueuePolicy"
    ATTRIBUTES = {"Id": "name"}

    def create(self, properties):
        self.queue_names = [url.rsplit("/", 1)[-1] for url in properties["Queues"]]
        self.set_policy(json.dumps(properties["PolicyDocument"]))

    def set_policy(self, policy):
        queues = sqs_backends[self.account_id][self.region_name].queues
        for name in self.queue_names:
            if name in queues:  # on stack delete the queue may be gone first
                queues[name].policy = policy

    def delete(self, account_id, region_name):
        self.set_policy(None)
