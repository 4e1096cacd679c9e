"""The conformance fixtures: the functions `oe-rt conform` calls to check
this runtime. Keep them as they are; configure them in service.yml under
their names (echo, context, none, fail, sleep)."""


def echo(event, context):
    """Returns the payload unchanged (JSON comes back re-serialised; an empty
    payload, which functions get as {} as in Baetyl, comes back as {})."""
    return event


def context(event, context):
    """Returns the call's metadata as the function sees it."""
    return {
        "messageQOS": context["messageQOS"],
        "messageTopic": context["messageTopic"],
        "functionName": context["functionName"],
        "functionInvokeID": context["functionInvokeID"],
    }


def none(event, context):
    """Returns nothing: the response payload is empty."""
    return None


def fail(event, context):
    """Always fails; the call gets an error status carrying this message."""
    raise RuntimeError("conformance failure: the fail fixture always fails")


def sleep(event, context):
    """Takes {"ms": N}, waits N ms or until the call ends, returns the payload."""
    if not isinstance(event, dict) or not isinstance(event.get("ms"), (int, float)) or isinstance(event.get("ms"), bool):
        raise ValueError('sleep wants a JSON payload {"ms": N}, got %r' % (event,))
    context.wait(max(0, event["ms"]) / 1000.0)
    return event
