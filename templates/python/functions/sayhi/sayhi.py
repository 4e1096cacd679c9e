"""An example function: greets whoever the payload names.

    $ oe-rt call sayhi '{"name": "world"}'
    {"say":"hi, world","topic":"","invokeID":"..."}
"""


def handler(event, context):
    """event is the payload: JSON decoded (here a dict), or bytes when it is
    not JSON, or None when empty. context holds the call's metadata. The
    result is sent back as JSON (bytes are sent as they are)."""
    name = "stranger"
    if isinstance(event, dict):
        name = event.get("name", name)
    elif isinstance(event, bytes):
        name = event.decode("utf-8", "replace")
    return {
        "say": "hi, %s" % name,
        "topic": context["messageTopic"],
        "invokeID": context["functionInvokeID"],
    }
