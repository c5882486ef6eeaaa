"""AWS::Lambda::EventInvokeConfig, which moto 5.2.5 skips. Here it is the function's event invoke config
(retries, event age, destinations) in moto's Lambda, removed on delete.
"""
from moto.awslambda.exceptions import UnknownFunctionException
from moto.awslambda.models import lambda_backends
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
