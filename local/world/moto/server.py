"""moto's server, with what this project's tests need and moto 5.2.5 does not do.

- SQS SenderId: real SQS stamps each message with the id of the principal that sent it (an IAM user's
  AIDA..., an assumed role's AROA...:<session>). moto puts one constant on every message, which would
  hide who queued it; here a message sent with credentials moto issued (an IAM access key, an STS
  assumed role) carries that principal's id, as in AWS. Unknown keys keep moto's constant.

- DynamoDB TransactWriteItems: moto backs up every table a transaction touches with a deep copy, so
  each transaction costs time and memory in proportion to the whole table (the fault suite's table of
  10,000 idempotency records took moto to 22 GB). Here only the items the transaction writes are backed
  up and put back when it is cancelled, as cheap as DynamoDB's own transactions are.

- DynamoDB requests: moto checks a write's condition and then writes, in a request thread, with nothing
  to keep another thread's write out in between; DynamoDB does both atomically. Here each DynamoDB
  request runs whole under one lock (a lease or a connection slot is never held twice because the
  machine was busy, and ALL_OLD is the write's own).

- CloudFormation, for `cdk deploy` of the project's stack: the package cfn/ (its modules say what and why).

- Secrets Manager: UpdateSecretVersionStage moves the AWSCURRENT label but not moto's own idea of the
  current version, which a read without a stage and the next PutSecretValue go by: after a
  compare-and-swap, that put left two versions labelled AWSCURRENT, and a read by label could return the
  older one (an operator's revocation read back with its refresh token). Here the move also makes the
  version current, as in AWS: one version holds AWSCURRENT.

- Lambda event source mappings on SQS: moto keeps them (create, list, get, update Enabled) but, while one is
  enabled, receives a queue's messages at every SendMessage to invoke the function, which needs Docker:
  the invoke fails and each message has spent a receive for nothing. Here a queue hands nothing to moto's
  Lambda; the local event-source runner (local/event-source/) polls instead, and honours the mapping's
  Enabled state as Lambda does.

Run as moto_server is: python server.py -H 127.0.0.1 -p 0
"""
import re
import sys
import threading
from contextvars import ContextVar

import copy

import cfn  # noqa: F401  (registers its CloudFormation models before the first stack operation)
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb import responses as dynamodb_responses
from moto.dynamodb.models.table import Table
from moto.secretsmanager import models as secretsmanager_models
from moto.server import main
from moto.sqs import models as sqs_models
from moto.sqs import responses as sqs_responses
from moto.sts.models import sts_backends

_sender: ContextVar = ContextVar("oauth_mailer_sender", default=None)
_ACCESS_KEY = re.compile(r"Credential=([A-Z0-9]+)/")
# What moto's get_caller_identity answers for credentials it did not issue.
_UNKNOWN_CALLER = "AKIAIOSFODNN7EXAMPLE"


def _sender_id(response):
    match = _ACCESS_KEY.search(response.headers.get("Authorization", ""))
    if not match:
        return None
    backend = sts_backends[response.current_account][response.partition]
    user_id, _arn, _account = backend.get_caller_identity(match.group(1), response.region)
    return None if user_id == _UNKNOWN_CALLER else user_id


_message_init = sqs_models.Message.__init__


def _init_with_sender(self, *args, **kwargs):
    _message_init(self, *args, **kwargs)
    sender = _sender.get()
    if sender:
        self.sender_id = sender


def _as_caller(action):
    def send(self, *args, **kwargs):
        token = _sender.set(_sender_id(self))
        try:
            return action(self, *args, **kwargs)
        finally:
            _sender.reset(token)

    return send


sqs_models.Message.__init__ = _init_with_sender
# A queue's mappings, as moto's Lambda records them, are never seen by its SendMessage (see above).
sqs_models.Queue.lambda_event_source_mappings = property(lambda self: {}, lambda self, value: None)
for _name in ("send_message", "send_message_batch"):
    setattr(sqs_responses.SQSResponse, _name, _as_caller(getattr(sqs_responses.SQSResponse, _name)))


class _TablesKeptInPlace:
    """moto's `copy` inside its DynamoDB backend: a table is not copied (the items are backed up instead)."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


dynamodb_models.copy = _TablesKeptInPlace()
_transact_write_items = dynamodb_models.DynamoDBBackend.transact_write_items


def _transact_with_item_backups(self, transact_items):
    backups = []
    for entry in transact_items:
        try:
            _op_type, op = next(iter(entry.items()))
            table = self.get_table(op["TableName"])
            attrs = op.get("Key") or op.get("Item") or {}
            hash_key, range_key = self.get_keys_value(table, attrs)
            backups.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        except Exception:  # an invalid request: moto's own code refuses it below
            continue
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        for table, hash_key, range_key, item in reversed(backups):
            if item is not None and range_key is not None:
                table.items[hash_key][range_key] = item
            elif item is not None:
                table.items[hash_key] = item
            elif table.get_item(hash_key, range_key) is not None:
                table.delete_item(hash_key, range_key)
        raise


dynamodb_models.DynamoDBBackend.transact_write_items = _transact_with_item_backups

# DynamoDB writes an item atomically: its condition is checked and the write made with nothing between,
# and what a request returns (ALL_OLD, UPDATED_NEW) is that write's. moto's server takes each request in
# a thread of its own and reads, checks, writes and serializes as Python switches threads: on a loaded
# machine two conditional writes on one item could both succeed (a lease or a slot held twice). Each
# DynamoDB request here runs whole under one lock.
_dynamodb_requests = threading.RLock()
_call_action = dynamodb_responses.DynamoHandler.call_action


def _one_at_a_time(self):
    with _dynamodb_requests:
        return _call_action(self)


dynamodb_responses.DynamoHandler.call_action = _one_at_a_time

_update_secret_version_stage = secretsmanager_models.SecretsManagerBackend.update_secret_version_stage


def _update_stage_moving_current(self, secret_id, version_stage, remove_from_version_id, move_to_version_id):
    result = _update_secret_version_stage(
        self, secret_id, version_stage, remove_from_version_id, move_to_version_id
    )
    if version_stage == "AWSCURRENT" and move_to_version_id:
        self.secrets[secret_id].set_default_version_id(move_to_version_id)
    return result


secretsmanager_models.SecretsManagerBackend.update_secret_version_stage = _update_stage_moving_current

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
