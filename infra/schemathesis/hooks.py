"""Schemathesis hooks for the dashboard API (infra/scripts/check-schemathesis.sh).

`Idempotency-Key` is a value the client makes new for each new request (a
UUIDv4): a schema cannot say "unique", and Schemathesis reuses simple
values across requests, where the API rightly answers a replay of the first
request (the stateful phase then finds a deleted key "created" again) or a
422 for another body. So in every positive case a schema-valid value is
replaced by a fresh UUIDv4 before the request is sent. Negative cases are
left exactly as generated (changing one would make Schemathesis take it for
a positive case): their invalid part is refused before any value is used.
Replays, 422 and 409 are tested by the project's own tests
(tests/dashboard/idempotency.rs and the end-to-end tests).
"""
import re
import uuid

import schemathesis

VALID = re.compile(r'^[ \t]*("[!#-~][ !#-~]{14,253}[!#-~]"|[!#-~][ !#-~]{14,253}[!#-~])[ \t]*$')


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return
    for name in list(case.headers or {}):
        if name.lower() == "idempotency-key" and VALID.match(str(case.headers[name])):
            case.headers[name] = str(uuid.uuid4())
