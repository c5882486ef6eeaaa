"""AWS::ApiGatewayV2::Api, ::Integration, ::Route and ::Stage, which moto 5.2.5 has no CloudFormation
model for. Here they are made in moto's API Gateway v2 backend, as the API calls of the same names would.
Ref: the API's, integration's and route's ids, the stage's name; Fn::GetAtt ApiEndpoint, ApiId,
IntegrationId, RouteId. The children's deletes tolerate an API deleted first (it took them with it).
"""
from moto.apigatewayv2.models import apigatewayv2_backends
from moto.core.common_models import CloudFormationModel

from .model import Model, call_with_properties


def _backend(model):
    return apigatewayv2_backends[model.account_id][model.region_name]


class HttpApi(Model, CloudFormationModel):
    TYPE = "AWS::ApiGatewayV2::Api"
    NAME_PROPERTY = "Name"
    ATTRIBUTES = {"ApiEndpoint": "api_endpoint", "ApiId": "api_id"}

    def create(self, properties):
        api = call_with_properties(_backend(self).create_api, properties, name=self.name)
        self.api_id, self.api_endpoint = api.api_id, api.api_endpoint

    def delete(self, account_id, region_name):
        _backend(self).delete_api(self.api_id)

    @property
    def physical_resource_id(self):
        return self.api_id


class ApiChild(Model):
    """What an integration, route and stage share: they live in their API's backend record."""

    def delete(self, account_id, region_name):
        api = _backend(self).apis.get(self.api_id)
        if api is not None:
            self.delete_from(api)

    @property
    def physical_resource_id(self):
        return self.id


class Integration(ApiChild, CloudFormationModel):
    TYPE = "AWS::ApiGatewayV2::Integration"
    ATTRIBUTES = {"IntegrationId": "id"}

    def create(self, properties):
        self.api_id = properties["ApiId"]
        self.id = call_with_properties(_backend(self).create_integration, properties).id

    def delete_from(self, api):
        api.delete_integration(self.id)


class Route(ApiChild, CloudFormationModel):
    TYPE = "AWS::ApiGatewayV2::Route"
    ATTRIBUTES = {"RouteId": "id"}

    def create(self, properties):
        self.api_id = properties["ApiId"]
        self.id = call_with_properties(_backend(self).create_route, properties).route_id

    def delete_from(self, api):
        api.delete_route(self.id)


# The request body of CreateStage in camelCase; maps of names the caller chose are kept as they are.
_VERBATIM = {"StageVariables", "Tags", "RouteSettings"}


def _camel_case(value):
    if not isinstance(value, dict):
        return value
    return {key[0].lower() + key[1:]: v if key in _VERBATIM else _camel_case(v) for key, v in value.items()}


class Stage(ApiChild, CloudFormationModel):
    TYPE = "AWS::ApiGatewayV2::Stage"

    def create(self, properties):
        self.api_id = properties["ApiId"]
        self.id = _backend(self).create_stage(self.api_id, _camel_case(properties)).name

    def delete_from(self, api):
        api.delete_stage(self.id)
