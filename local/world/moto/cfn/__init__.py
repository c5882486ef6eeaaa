"""CloudFormation in moto as `cdk deploy` of this project's stack needs it: the stack and change-set
fixes, and models for the resource types moto 5.2.5 skips or lacks, each made in moto's own backend for
that service. Each module's docstring says what moto does and what it does here instead."""
from . import apigatewayv2, awslambda, cloudformation, cloudwatch, dynamodb, s3, scheduler, secretsmanager, sns, sqs  # noqa: F401
