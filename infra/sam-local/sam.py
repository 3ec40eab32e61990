"""The SAM CLI (pinned in infra/requirements-sam.txt) with one rule of API
Gateway's that its `start-api` emulation lacks:

    a Lambda authorizer that fails with the error message exactly
    "Unauthorized" makes API Gateway answer 401 {"message":"Unauthorized"}
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-use-lambda-authorizer.html).

SAM 1.170 treats that answer as a broken authorizer response instead (an
error response is not a policy) and answers 5xx, so every 401 of our
authorizer — unknown, deactivated, deleted or expired key, no key — would
look like a server error. Everything else is SAM's own: its router, its
event construction, its policy check (Allow on the method ARN, else 403),
its containers.

usage: .venv/bin/python infra/sam-local/sam.py local start-api …   (any sam arguments)
"""
import json
import sys
import threading
from io import StringIO

import samcli
from flask import jsonify, make_response
from samcli.cli.main import cli
from samcli.lib.utils.stream_writer import StreamWriter
from samcli.local.apigw import local_apigw_service as service
from samcli.local.apigw.exceptions import LambdaResponseParseException
from samcli.local.services.base_local_service import LambdaOutputParser

PINNED = "1.170.0"
if samcli.__version__ != PINNED:
    sys.exit(f"infra/sam-local/sam.py patches SAM CLI {PINNED}; this is {samcli.__version__}: check the patch first")


class AuthorizerUnauthorized(Exception):
    """The authorizer failed with exactly "Unauthorized"."""


_state = threading.local()
_invoke = service.LocalApigwService._invoke_lambda_function
_parse = service.LocalApigwService._invoke_parse_lambda_authorizer
_create = service.LocalApigwService.create


def invoke(self, lambda_function_name, event, tenant_id=None):
    if not getattr(_state, "authorizing", False):
        return _invoke(self, lambda_function_name, event, tenant_id)
    # SAM's own invocation (LocalApigwService._invoke_lambda_function), with
    # the authorizer's error message read before SAM discards it.
    with StringIO() as stdout:
        writer = StreamWriter(stdout, auto_flush=True)
        self.lambda_runner.invoke(
            lambda_function_name, json.dumps(event, sort_keys=True), stdout=writer, stderr=self.stderr, tenant_id=tenant_id
        )
        response, is_error = LambdaOutputParser.get_lambda_output(stdout)
    if is_error:
        try:
            message = json.loads(response).get("errorMessage")
        except (ValueError, AttributeError):
            message = None
        if message == "Unauthorized":
            raise AuthorizerUnauthorized()
        raise LambdaResponseParseException
    return response


def parse(self, *args, **kwargs):
    _state.authorizing = True
    try:
        return _parse(self, *args, **kwargs)
    finally:
        _state.authorizing = False


def create(self):
    _create(self)
    self._app.register_error_handler(
        AuthorizerUnauthorized, lambda _e: make_response(jsonify({"message": "Unauthorized"}), 401)
    )


service.LocalApigwService._invoke_lambda_function = invoke
service.LocalApigwService._invoke_parse_lambda_authorizer = parse
service.LocalApigwService.create = create

if __name__ == "__main__":
    sys.argv[0] = "sam"
    sys.exit(cli())
