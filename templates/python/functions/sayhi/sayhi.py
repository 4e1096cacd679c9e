"""An example function: greets whoever the payload names.

    $ oe-rt call --address 127.0.0.1:50051 sayhi '{"name": "world"}'
    {"say":"hi, world","topic":"","invokeID":"..."}

(with the runtime serving on that address: make run).
"""


def handler(event, context):
    """event is the payload: JSON decoded (here a dict), or bytes when it is
    not JSON, or {} when empty. context is a dict of the call's metadata
    (messageTopic, functionInvokeID, ...). The result is sent back as JSON
    (bytes are sent as they are, None as an empty payload)."""
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
