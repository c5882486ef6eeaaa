"""AWS::DynamoDB::GlobalTable, which moto 5.2.5 does not model (the first Fn::GetAtt to one aborts the
stack). Here it is a DynamoDB table in moto's backend, in the stack's Region (the replica there is the
table; other Regions' replicas are not made), with its keys, indexes, stream, TTL and point-in-time
recovery. Ref: the table name; Fn::GetAtt: Arn, StreamArn, TableId.
"""
from uuid import uuid4

from moto.core.common_models import CloudFormationModel
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table

from .model import Model


def _replica_here(properties, region_name):
    return next((r for r in properties.get("Replicas", []) if r.get("Region") == region_name), {})


class GlobalTable(Model, CloudFormationModel):
    TYPE = "AWS::DynamoDB::GlobalTable"
    NAME_PROPERTY = "TableName"
    ATTRIBUTES = {"Arn": "arn", "StreamArn": "stream_arn", "TableId": "table_id"}

    @property
    def backend(self):
        return dynamodb_backends[self.account_id][self.region_name]

    def create(self, properties):
        replica = _replica_here(properties, self.region_name)
        # moto's own AWS::DynamoDB::Table takes the same properties but for those a global table keeps per replica.
        table_properties = {**properties, **{k: replica[k] for k in ("Tags", "DeletionProtectionEnabled") if k in replica}}
        self.table = Table.create_from_cloudformation_json(
            self.name, {"Properties": table_properties}, self.account_id, self.region_name
        )
        self.table_id = str(uuid4())  # moto's tables have no id
        self.configure(properties, replica)

    def configure(self, properties, replica):
        if "TimeToLiveSpecification" in properties:
            self.backend.update_time_to_live(self.name, properties["TimeToLiveSpecification"])
        if "PointInTimeRecoverySpecification" in replica:
            self.backend.update_continuous_backups(self.name, replica["PointInTimeRecoverySpecification"])

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
    ):
        """In place, keeping the items, as DynamoDB does; a new name or key schema replaces the table."""
        properties = cloudformation_json["Properties"]
        name = cls.updated_name(original_resource, new_resource_name, cloudformation_json)
        if name != original_resource.name or properties["KeySchema"] != original_resource.table.schema:
            return super().update_from_cloudformation_json(
                original_resource, new_resource_name, cloudformation_json, account_id, region_name
            )
        table, backend = original_resource.table, original_resource.backend
        old_indexes = {index.name for index in table.global_indexes}
        new_indexes = {index["IndexName"]: index for index in properties.get("GlobalSecondaryIndexes", [])}
        backend.update_table_global_indexes(
            table,
            [{"Delete": {"IndexName": gone}} for gone in old_indexes - set(new_indexes)]
            + [{"Create": index} for added, index in new_indexes.items() if added not in old_indexes],
        )
        table.attr = properties["AttributeDefinitions"]
        original_resource.configure(properties, _replica_here(properties, region_name))
        return original_resource

    def delete(self, account_id, region_name):
        self.backend.delete_table(self.name)

    @property
    def arn(self):
        return self.table.table_arn

    @property
    def stream_arn(self):
        return self.table.get_cfn_attribute("StreamArn")

