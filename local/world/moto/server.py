"""moto's server, with what this project's tests need and moto 5.2.5 does not do.

- SQS SenderId: real SQS stamps each message with the id of the principal that sent it (an IAM user's
  AIDA..., an assumed role's AROA...:<session>). moto puts one constant on every message, which would
  hide who queued it; here a message sent with credentials moto issued (an IAM access key, an STS
  assumed role) carries that principal's id, as in AWS. Unknown keys keep moto's constant.

Run as moto_server is: python server.py -H 127.0.0.1 -p 0
"""
import re
import sys
from contextvars import ContextVar

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
for _name in ("send_message", "send_message_batch"):
    setattr(sqs_responses.SQSResponse, _name, _as_caller(getattr(sqs_responses.SQSResponse, _name)))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
