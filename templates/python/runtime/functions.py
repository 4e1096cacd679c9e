"""Loading user functions and calling them the way the convention says.

A function is configured with ``handler: module.function`` and ``codedir``:
the module is imported from codedir (which stays on sys.path, so it can
import its neighbours) and ``function(event, context)`` is called for each
Call, exactly as Baetyl's own Python runtime calls it, so that a function
written for Baetyl runs unchanged:

- event: the payload decoded from JSON when it is JSON, else the raw bytes.
  An empty payload is what the era's own runtimes give: a new empty dict
  ``{}`` for a call of baetyl.Function (Baetyl's runtimes; a function that
  returns it makes the function manager publish ``{}``), None for a call of
  openedge.Function (OpenEdge 0.1.2's; returned, the manager publishes
  nothing).
- context: a dict with messageQOS, messageTopic, messageTimestamp (0 for
  an OpenEdge call, which has none), functionName, functionInvokeID and
  invokeid (the same as functionInvokeID), which also has the methods of
  Context below: ``context.wait(seconds)`` sleeps until the call ends
  early, ``context.cancelled()`` tells whether it has.

The result becomes the response payload: bytes as they are, None as an
empty payload, anything else (a string too) as its JSON.
"""

import importlib
import json
import os
import sys
import threading


class LoadError(Exception):
    """A configured function that cannot be loaded."""


def _module_file(module):
    f = getattr(module, "__file__", None)
    return os.path.realpath(f) if f else None


def _inside(path, codedir):
    return path is not None and path.startswith(os.path.realpath(codedir) + os.sep)


def load(fn):
    """Imports fn.handler ("module.function") from fn.codedir and returns the function.

    Two functions may use the same module name in different codedirs (every
    function an ``index.handler``): the module already imported under that
    name is put aside while this one is imported, then put back, so each
    function gets the module from its own codedir.
    """
    modname, _, funcname = fn.handler.rpartition(".")
    codedir = os.path.abspath(fn.codedir or ".")
    if not os.path.isdir(codedir):
        raise LoadError("function %r: codedir %s is not a directory" % (fn.name, codedir))
    if codedir not in sys.path:
        sys.path.insert(0, codedir)
    top = modname.split(".")[0]
    loaded = sys.modules.get(modname)
    if loaded is not None and _inside(_module_file(loaded), codedir):
        module = loaded
    else:
        # Put aside any module of that name (and its package) imported from
        # elsewhere, import ours from codedir first, then restore.
        aside = {k: v for k, v in sys.modules.items() if k == top or k.startswith(top + ".")}
        for k in aside:
            del sys.modules[k]
        sys.path.remove(codedir)
        sys.path.insert(0, codedir)
        try:
            module = importlib.import_module(modname)
        except Exception as e:
            raise LoadError("function %r: import %s from %s: %s: %s" % (fn.name, modname, codedir, type(e).__name__, e))
        finally:
            ours = {k: v for k, v in sys.modules.items() if k == top or k.startswith(top + ".")}
            for k in ours:
                del sys.modules[k]
            sys.modules.update(aside if aside else ours)
        if not _inside(_module_file(module), codedir):
            raise LoadError(
                "function %r: module %s was found at %s, not in codedir %s" % (fn.name, modname, _module_file(module), codedir)
            )
    f = getattr(module, funcname, None)
    if not callable(f):
        raise LoadError("function %r: %s has no function %r" % (fn.name, _module_file(module), funcname))
    return f


class Context(dict):
    """The context a function receives: the convention's dict of the call's
    metadata, plus the call's cancellation.

    The call ends when the caller cancelled it, its deadline passed, or the
    runtime is stopping past its grace period. A function that waits or
    loops can stop early then. The event that wait() waits on is made, and
    tied to the call's end, the first time a function waits: a call whose
    function never waits costs nothing for it.
    """

    def __init__(self, values, ended=None, grpc_context=None):
        dict.__init__(self, values)
        self._ended = ended
        self._grpc = grpc_context

    def _event(self):
        if self._ended is None:
            ended = threading.Event()
            if self._grpc is not None and not self._grpc.add_callback(ended.set):
                ended.set()  # the call has already ended
            self._ended = ended
        return self._ended

    def cancelled(self):
        """True once the call has ended (cancelled or past its deadline)."""
        if self._ended is None and self._grpc is not None:
            return not self._grpc.is_active()
        return self._event().is_set()

    def wait(self, seconds):
        """Sleeps for seconds or until the call ends; returns True if it ended."""
        return self._event().wait(seconds)

    def time_remaining(self):
        """Seconds until the call's deadline, or None when it has none."""
        return self._grpc.time_remaining() if self._grpc is not None else None


def decode_event(payload, package="baetyl"):
    """The event a function receives for a payload (bytes or a memoryview)
    of a call of package's Function: its JSON value when it is JSON text,
    else the bytes; when empty, a new empty dict under Baetyl and None under
    OpenEdge, as each era's own runtimes give."""
    if not payload:
        return {} if package == "baetyl" else None
    # Only text that starts like JSON is tried, so that binary payloads are
    # not decoded as a whole for nothing.
    head = bytes(payload[:64]).lstrip(b" \t\r\n")
    if not head or head[:1] in b'{["-0123456789tfn':
        try:
            text = str(payload, "utf-8")  # straight from a view: no bytes copy first
        except UnicodeDecodeError:
            text = None
        if text is not None:
            try:
                return json.loads(text)
            except ValueError:
                pass
            del text
    return bytes(payload)


def encode_result(result):
    """The payload a function's result becomes: bytes as they are, None as
    empty, anything else as its JSON. Raises TypeError or ValueError for a
    value JSON cannot represent."""
    if result is None:
        return b""
    if isinstance(result, (bytes, bytearray, memoryview)):
        return bytes(result)
    return dump_json(result).encode("utf-8")


# One encoder for every call: json.dumps makes a new one for each call
# given options. An encoder keeps no state between calls.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dump_json(value):
    """value as compact JSON text; TypeError or ValueError when JSON cannot represent it."""
    return _ENCODER.encode(value)
