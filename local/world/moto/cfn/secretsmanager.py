"""AWS::SecretsManager::Secret, which moto 5.2.5 skips (a Ref to one silently becomes null). Here it is a
secret in moto's Secrets Manager, encrypted under KmsKeyId, its value SecretString or one made as
GenerateSecretString says (into SecretStringTemplate's JSON under GenerateStringKey, if given).
Ref and Fn::GetAtt Id: the secret's ARN. On stack delete it goes without a recovery window.
"""
import json

from moto.core.common_models import CloudFormationModel
from moto.secretsmanager.models import secretsmanager_backends

from .model import Model, call_with_properties


class Secret(Model, CloudFormationModel):
    TYPE = "AWS::SecretsManager::Secret"
    NAME_PROPERTY = "Name"
    ATTRIBUTES = {"Id": "arn"}

    @property
    def backend(self):
        return secretsmanager_backends[self.account_id][self.region_name]

    def create(self, properties):
        created = self.backend.create_secret(
            name=self.name,
            secret_string=properties.get("SecretString") or self.generate(properties.get("GenerateSecretString")),
            secret_binary=None,
            description=properties.get("Description"),
            tags=properties.get("Tags", []),
            kms_key_id=properties.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=properties.get("ReplicaRegions", []),
            force_overwrite=False,
        )
        self.arn = json.loads(created)["ARN"]

    def generate(self, spec):
        if spec is None:
            return None
        password = json.loads(
            call_with_properties(
                self.backend.get_random_password,
                spec,
                password_length=int(spec.get("PasswordLength", 32)),
                require_each_included_type=spec.get("RequireEachIncludedType", True),
                exclude_characters=spec.get("ExcludeCharacters", ""),
            )
        )["RandomPassword"]
        if "GenerateStringKey" not in spec:
            return password
        return json.dumps({**json.loads(spec["SecretStringTemplate"]), spec["GenerateStringKey"]: password})

    def delete(self, account_id, region_name):
        self.backend.delete_secret(self.arn, recovery_window_in_days=None, force_delete_without_recovery=True)

    @property
    def physical_resource_id(self):
        return self.arn
