"""moto's CloudFormation stacks and change sets where `cdk deploy` and `cdk destroy` need AWS's behaviour.

- A stack created through a change set (as `cdk deploy` creates every stack) gets no Outputs: moto keeps
  the empty template the stack was created with for its outputs. Here executing a change set gives the
  stack its new template and outputs.
- DescribeChangeSet of an unknown change set answers a ValidationError; CloudFormation answers
  ChangeSetNotFoundException, which the CDK CLI waits for after deleting one (otherwise it aborts).
- DeleteChangeSet of an unknown name fails with a 500 (a Python error); CloudFormation deletes nothing
  and succeeds, which the CLI relies on to clear a change set left from an earlier run.
- UsePreviousValue of an SSM-typed parameter (the CDK's BootstrapVersion, on every update) reuses the
  value moto resolved, then resolves it again as a parameter name and fails. CloudFormation keeps the
  parameter's name and resolves it anew; so does `stack_parameters` here.
- AWS::CDK::Metadata, the CDK's record of the constructs in a stack, is a resource CloudFormation keeps
  nothing for; moto has no model, so it was missing from the stack's resources.
"""
from moto.cloudformation import models
from moto.cloudformation.exceptions import CloudFormationError
from moto.core.common_models import CloudFormationModel

from .model import Model


class ChangeSetNotFound(CloudFormationError):
    code = "ChangeSetNotFoundException"


_apply = models.ChangeSet.apply


def _apply_with_outputs(self):
    _apply(self)
    self.stack.template = self.template
    self.stack._parse_template()
    self.stack.output_map = self.stack._create_output_map()


def _find_change_set(backend, name):
    return backend.change_sets.get(name) or next(
        (cs for cs in backend.change_sets.values() if cs.change_set_name == name), None
    )


def _describe_change_set(self, change_set_name):
    change_set = _find_change_set(self, change_set_name)
    if change_set is None:
        raise ChangeSetNotFound(f"ChangeSet [{change_set_name}] does not exist")
    return change_set


def _delete_change_set(self, change_set_name):
    change_set = _find_change_set(self, change_set_name)
    if change_set is not None:
        del self.change_sets[change_set.change_set_id]


def _stack_parameters(self):
    declared = self.resource_map._template.get("Parameters", {})
    given = self.resource_map.input_parameters
    return {
        key: given.get(key, declared[key].get("Default"))
        if declared.get(key, {}).get("Type", "").startswith("AWS::SSM::Parameter::")
        else value
        for key, value in self.resource_map.resolved_parameters.items()
    }


models.ChangeSet.apply = _apply_with_outputs
models.CloudFormationBackend.describe_change_set = _describe_change_set
models.CloudFormationBackend.delete_change_set = _delete_change_set
models.Stack.stack_parameters = property(_stack_parameters)


class CdkMetadata(Model, CloudFormationModel):
    TYPE = "AWS::CDK::Metadata"

    def create(self, properties):
        pass

    def delete(self, account_id, region_name):
        pass
