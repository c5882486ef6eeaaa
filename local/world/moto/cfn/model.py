"""What the CloudFormation models here share.

moto finds a model by its class being a direct subclass of CloudFormationModel (`__subclasses__()`,
cached at the first stack operation), so every model lists `Model` first and CloudFormationModel
second, and this package is imported before the server starts.
"""
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException


class Model:
    TYPE = ""
    #: The property that names the resource; without it moto generates `<stack>-<logical id>-<suffix>`.
    NAME_PROPERTY = ""
    #: Fn::GetAtt name -> the instance attribute that answers it.
    ATTRIBUTES: dict = {}

    def __init__(self, name, properties, account_id, region_name):
        self.name, self.account_id, self.region_name = name, account_id, region_name
        self.create(properties)

    def create(self, properties):
        raise NotImplementedError

    def delete(self, account_id, region_name):
        raise NotImplementedError

    @classmethod
    def cloudformation_type(cls):
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls):
        return cls.NAME_PROPERTY

    @classmethod
    def has_cfn_attr(cls, attr):
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attr):
        if attr not in self.ATTRIBUTES:
            raise UnformattedGetAttTemplateException()
        return getattr(self, self.ATTRIBUTES[attr])

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **_):
        return cls(resource_name, cloudformation_json["Properties"], account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
    ):
        """A replacement, old first, so that its name is free. Models with state worth keeping update in place."""
        original_resource.delete(account_id, region_name)
        name = cls.updated_name(original_resource, new_resource_name, cloudformation_json)
        return cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)

    @classmethod
    def updated_name(cls, original_resource, new_resource_name, cloudformation_json):
        """moto makes a new name for every update; CloudFormation keeps the one it generated unless the
        template names the resource."""
        named = cls.NAME_PROPERTY and cls.NAME_PROPERTY in cloudformation_json["Properties"]
        return new_resource_name if named else original_resource.name

    @property
    def physical_resource_id(self):
        """What Ref answers; the name unless the model says otherwise."""
        return self.name

    def is_created(self):
        return True


def call_with_properties(method, properties, **given):
    """Calls a moto backend method with each keyword it takes read from the CloudFormation property of
    that name in PascalCase (`schedule_expression` <- ScheduleExpression), `given` taking precedence."""
    from inspect import signature

    pascal = lambda name: "".join(part.capitalize() for part in name.split("_"))  # noqa: E731
    names = [name for name in signature(method).parameters if name != "self"]
    return method(**{name: given[name] if name in given else properties.get(pascal(name)) for name in names})
