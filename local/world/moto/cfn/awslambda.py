"""Lambda resources where moto 5.2.5 falls short of CloudFormation.

- AWS::Lambda::EventInvokeConfig is skipped. Here it is the function's event invoke config (retries,
  event age, destinations) in moto's Lambda, removed on delete.
- AWS::Lambda::Permission gets no physical id (Ref is null, DescribeStackResources shows none) and its
  statement, under a random id, stays in the function's policy when the resource goes. Here the
  statement's id is the resource's physical id, as in AWS, and delete removes it.
"""
import json

from moto.awslambda.exceptions import UnknownFunctionException, UnknownPolicyException
from moto.awslambda.models import Permission, lambda_backends
from moto.core.common_models import CloudFormationModel

from .model import Model


class EventInvokeConfig(Model, CloudFormationModel):
    TYPE = "AWS::Lambda::EventInvokeConfig"

    def create(self, properties):
        self.function_name = properties["FunctionName"]
        config = {key: properties[key] for key in properties if key not in ("FunctionName", "Qualifier")}
        lambda_backends[self.account_id][self.region_name].put_function_event_invoke_config(self.function_name, config)

    def delete(self, account_id, region_name):
        try:
            lambda_backends[account_id][region_name].delete_function_event_invoke_config(self.function_name)
        except UnknownFunctionException:  # on stack delete the function may be gone first, and its config with it
            pass


def _create_permission(cls, resource_name, cloudformation_json, account_id, region_name, **_):
    properties = cloudformation_json["Properties"]
    function = lambda_backends[account_id][region_name].get_function(properties["FunctionName"])
    function.policy.add_statement(json.dumps({**properties, "StatementId": resource_name}))
    permission = cls(region_name)
    permission.physical_resource_id, permission.function_name = resource_name, properties["FunctionName"]
    return permission


def _delete_permission(self, account_id, region_name):
    try:
        function = lambda_backends[account_id][region_name].get_function(self.function_name)
        function.policy.del_statement(self.physical_resource_id)
    except (UnknownFunctionException, UnknownPolicyException):  # gone with its function
        pass


Permission.create_from_cloudformation_json = classmethod(_create_permission)
Permission.delete = _delete_permission
