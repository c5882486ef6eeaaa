"""AWS::Scheduler::Schedule, which moto 5.2.5 has no CloudFormation model for. Here it is a schedule in
moto's EventBridge Scheduler (which never fires it). Ref: the name; Fn::GetAtt Arn.
"""
from moto.core.common_models import CloudFormationModel
from moto.scheduler.models import scheduler_backends

from .model import Model, call_with_properties


class Schedule(Model, CloudFormationModel):
    TYPE = "AWS::Scheduler::Schedule"
    NAME_PROPERTY = "Name"
    ATTRIBUTES = {"Arn": "arn"}

    def create(self, properties):
        self.group_name = properties.get("GroupName")
        backend = scheduler_backends[self.account_id][self.region_name]
        self.arn = call_with_properties(backend.create_schedule, properties, name=self.name).arn

    def delete(self, account_id, region_name):
        scheduler_backends[account_id][region_name].delete_schedule(self.group_name, self.name)
