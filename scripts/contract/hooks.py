"""schemathesis hooks for scripts/contract-test (loaded through SCHEMATHESIS_HOOKS).

Idempotency-Key: schemathesis draws header values from a small space and
sends the same key again with other requests; the service then rightly
answers 422 ("was already used with a different request", as the
Idempotency-Key draft says), which the positive-data check would report as a
valid request rejected. A real client uses a fresh key per request, so
positive cases get one here. Negative cases keep what was generated, so
invalid keys are still sent and must still be refused. Reuse itself is
covered by tests/.
"""

import itertools
import uuid

import schemathesis

_RUN = uuid.uuid4().hex[:12]
_COUNTER = itertools.count(1)


@schemathesis.hook
def before_call(context, case, kwargs):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or not case.headers:
        return
    for name in list(case.headers):
        if name.lower() == "idempotency-key":
            case.headers[name] = f"contract-{_RUN}-{next(_COUNTER)}"
