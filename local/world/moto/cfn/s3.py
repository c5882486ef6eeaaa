"""AWS::S3::BucketPolicy, which moto 5.2.5 lacks (the stack aborts at it). moto evaluates a bucket's
policy on requests, and every policy here (the bootstrap bucket's, the large-message bucket's) denies
requests without TLS, which is all moto speaks: so the policy is kept on this resource for the stack's
record, not applied to the bucket. Ref: the bucket name, as CloudFormation answers.
"""
import json

from moto.core.common_models import CloudFormationModel

from .model import Model


class BucketPolicy(Model, CloudFormationModel):
    TYPE = "AWS::S3::BucketPolicy"

    def create(self, properties):
        # Ref answers the bucket's name (Model's physical_resource_id is the name).
        self.name = properties["Bucket"]
        self.policy = json.dumps(properties["PolicyDocument"])

    def delete(self, account_id, region_name):
        self.policy = None
