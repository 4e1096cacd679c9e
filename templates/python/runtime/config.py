"""The runtime's configuration: the keys of the convention's service.yml.

    name: myruntime
    server:
      address: 127.0.0.1:50051   # used when no environment variable gives one
      timeout: 10s               # grace period at shutdown (or 10000000000: nanoseconds)
      message: {length: {max: 4m}}
      concurrent: {max: 100}     # calls at once; more get RESOURCE_EXHAUSTED
      workers: {max: 6}          # threads that run functions
      ca: etc/ca.pem             # key and cert: TLS; with ca: mutual TLS
      key: etc/server.key
      cert: etc/server.pem
    functions:
      - name: sayhi
        handler: sayhi.handler   # module sayhi, function handler
        codedir: functions/sayhi
    logger:
      path: ""                   # a file to append to (its directory is created); empty: standard error
      level: info                # debug, info, warn, error
      format: text               # text or json
      age: {max: 15}             # Baetyl's rotation settings (days, MiB, files):
      size: {max: 50}            # accepted and checked (whole numbers >= 1),
      backup: {max: 15}          # but the runtime does not rotate its log

Without -c the runtime reads BAETYL_PATH when a Baetyl master started it
(any variable of BAETYL_ENV is set), else OPENEDGE_PATH: see default_path.

Unknown keys, duplicate keys and bad values are errors that name the file
and the line, so that a typo is never silently ignored.
"""

import os
import re

import yaml

# The configuration files read when -c is not given: a Baetyl master mounts
# the instance's configuration at BAETYL_PATH (relative to the instance's
# working directory) and passes no -c; OPENEDGE_PATH otherwise.
BAETYL_PATH = "etc/baetyl/service.yml"
OPENEDGE_PATH = "etc/openedge/service.yml"
# The variables by which a Baetyl master is recognised: it sets all of them
# for every instance it starts.
BAETYL_ENV = (
    "BAETYL_SERVICE_INSTANCE_ADDRESS",
    "BAETYL_SERVICE_INSTANCE_NAME",
    "BAETYL_SERVICE_NAME",
)
DEFAULT_MAX_MESSAGE = 4 << 20
DEFAULT_GRACE = 10.0
DEFAULT_WORKERS = 6

# The variables the listen address and the instance name come from, in order
# of precedence (the convention's order), before the config's own keys.
ADDRESS_ENV = (
    "BAETYL_SERVICE_INSTANCE_ADDRESS",
    "OPENEDGE_SERVICE_INSTANCE_ADDRESS",
    "OPENEDGE_SERVICE_ADDRESS",
)
NAME_ENV = (
    "BAETYL_SERVICE_INSTANCE_NAME",
    "OPENEDGE_SERVICE_INSTANCE_NAME",
    "OPENEDGE_SERVICE_NAME",
)


class ConfigError(Exception):
    """A configuration that cannot be used; the message names file and line."""


class Function(object):
    """One entry of functions[]."""

    def __init__(self, name="", handler="", codedir="", line=0):
        self.name = name
        self.handler = handler
        self.codedir = codedir
        self.line = line

    def __repr__(self):
        return "Function(name=%r, handler=%r, codedir=%r)" % (self.name, self.handler, self.codedir)


class Config(object):
    """The configuration, with the convention's defaults."""

    def __init__(self):
        self.name = ""
        self.address = ""
        self.timeout = DEFAULT_GRACE  # seconds
        self.max_message = DEFAULT_MAX_MESSAGE  # bytes
        self.concurrent_max = None  # None: no limit
        self.workers_max = DEFAULT_WORKERS
        self.ca = ""
        self.key = ""
        self.cert = ""
        self.functions = []
        self.logger_path = ""
        self.logger_level = "info"
        self.logger_format = "text"
        # Baetyl's rotation settings, accepted but not acted on (None: not set).
        self.logger_age_max = None
        self.logger_size_max = None
        self.logger_backup_max = None


_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?(?:i?b)?$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text):
    """Parses a byte count as Baetyl's function manager does (go-units'
    RAMInBytes): plain bytes (4194304) or a number, fractions too, with a
    1024-based unit (4m, 512k, 4MiB, 4MB, 4.5m); fractions of a byte are dropped."""
    m = _SIZE.match(str(text).strip())
    if not m:
        raise ValueError("size %r: want bytes or a number with a unit such as 4m or 512k" % (text,))
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower()])


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text):
    """Parses a duration into seconds: written as Go writes them (30s, 1m30s,
    500ms), or an integer of nanoseconds (5000000000), the form Baetyl's own
    runtimes read. A bare number is nanoseconds, not seconds."""
    s = str(text).strip()
    if re.match(r"^\d+$", s):
        return int(s) / 1e9
    total, pos = 0.0, 0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos == 0 or pos != len(s):
        raise ValueError("duration %r: want a number with a unit such as 30s or 500ms, or an integer of nanoseconds" % (text,))
    return total


# Each leaf is a converter from a scalar node's text; a dict is a mapping, a
# list holds the schema of its items.
def _string(node):
    return "" if node.tag == "tag:yaml.org,2002:null" else node.value


def _count(node):
    if node.tag != "tag:yaml.org,2002:int" or int(node.value, 0) < 0:
        raise ValueError("want a whole number >= 0, got %r" % node.value)
    return int(node.value, 0)


def _size(node):
    n = parse_size(node.value)
    if n <= 0:
        raise ValueError("size must be positive")
    return n


def _duration(node):
    return parse_duration(node.value)


def _positive(node):
    if node.tag != "tag:yaml.org,2002:int" or int(node.value, 0) < 1:
        raise ValueError("want a whole number >= 1, got %r" % node.value)
    return int(node.value, 0)


_SCHEMA = {
    "name": _string,
    "server": {
        "address": _string,
        "timeout": _duration,
        "message": {"length": {"max": _size}},
        "concurrent": {"max": _count},
        "workers": {"max": _count},
        "ca": _string,
        "key": _string,
        "cert": _string,
    },
    "functions": [{"name": _string, "handler": _string, "codedir": _string}],
    "logger": {
        "path": _string,
        "level": _string,
        "format": _string,
        "age": {"max": _positive},
        "size": {"max": _positive},
        "backup": {"max": _positive},
    },
}

_KINDS = {yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list", yaml.ScalarNode: "a value"}


def _walk(schema, node, where, fail):
    """Converts node by schema into plain dicts, lists and values."""
    line = node.start_mark.line + 1
    if isinstance(schema, dict):
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return {}
        if not isinstance(node, yaml.MappingNode):
            fail(line, "%s: want a mapping, got %s" % (where, _KINDS[type(node)]))
        out = {}
        for k, v in node.value:
            key = k.value
            sub = (where + "." if where != "the top level" else "") + key
            if key not in schema:
                fail(k.start_mark.line + 1, "unknown key %r in %s" % (key, where))
            if key in out:
                fail(k.start_mark.line + 1, "key %r given twice in %s" % (key, where))
            out[key] = _walk(schema[key], v, sub, fail)
        out["__line__"] = line
        return out
    if isinstance(schema, list):
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return []
        if not isinstance(node, yaml.SequenceNode):
            fail(line, "%s: want a list, got %s" % (where, _KINDS[type(node)]))
        return [_walk(schema[0], item, "%s[%d]" % (where, i), fail) for i, item in enumerate(node.value)]
    if not isinstance(node, yaml.ScalarNode):
        fail(line, "%s: want a value, got %s" % (where, _KINDS[type(node)]))
    try:
        return schema(node)
    except ValueError as e:
        fail(line, "%s: %s" % (where, e))


def parse(text, filename="<config>"):
    """Parses configuration text; filename is used in messages."""

    def fail(line, msg):
        raise ConfigError("%s:%d: %s" % (filename, line, msg))

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ConfigError("%s:%d: %s" % (filename, mark.line + 1 if mark else 0, e.problem or e))
    except yaml.YAMLError as e:
        raise ConfigError("%s: %s" % (filename, e))
    c = Config()
    if root is None:
        return c
    d = _walk(_SCHEMA, root, "the top level", fail)
    c.name = d.get("name", "")
    s = d.get("server", {})
    c.address = s.get("address", "")
    c.timeout = s.get("timeout", DEFAULT_GRACE)
    c.max_message = s.get("message", {}).get("length", {}).get("max", DEFAULT_MAX_MESSAGE)
    c.concurrent_max = s.get("concurrent", {}).get("max") or None
    c.workers_max = s.get("workers", {}).get("max") or DEFAULT_WORKERS
    c.ca, c.key, c.cert = s.get("ca", ""), s.get("key", ""), s.get("cert", "")
    lg = d.get("logger", {})
    c.logger_path = lg.get("path", "")
    c.logger_level = lg.get("level", "") or "info"
    c.logger_format = lg.get("format", "") or "text"
    c.logger_age_max = lg.get("age", {}).get("max")
    c.logger_size_max = lg.get("size", {}).get("max")
    c.logger_backup_max = lg.get("backup", {}).get("max")
    seen = set()
    for i, f in enumerate(d.get("functions", [])):
        fn = Function(f.get("name", ""), f.get("handler", ""), f.get("codedir", ""), f["__line__"])
        if not fn.name:
            fail(fn.line, "functions[%d]: name is empty" % i)
        if fn.name in seen:
            fail(fn.line, "function %r is configured twice" % fn.name)
        if not re.match(r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$", fn.handler):
            fail(fn.line, "function %r: handler %r: want module.function, e.g. index.handler" % (fn.name, fn.handler))
        seen.add(fn.name)
        c.functions.append(fn)
    line = s.get("__line__", 1)
    if bool(c.key) != bool(c.cert):
        fail(line, "server: TLS needs both key and cert")
    if c.ca and not c.cert:
        fail(line, "server: ca (mutual TLS) needs key and cert too")
    if c.logger_level.lower() not in ("debug", "info", "warn", "warning", "error"):
        fail(lg.get("__line__", 1), "logger.level %r: want debug, info, warn or error" % c.logger_level)
    if c.logger_format.lower() not in ("text", "json"):
        fail(lg.get("__line__", 1), "logger.format %r: want text or json" % c.logger_format)
    return c


def load(path):
    """Reads and parses the configuration file at path."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError("read config %s: %s" % (path, e.strerror or e))
    return parse(text, path)


def default_path(environ=None):
    """Returns (the configuration file to read when -c is not given, why):
    BAETYL_PATH when a variable of BAETYL_ENV is set, else OPENEDGE_PATH."""
    environ = os.environ if environ is None else environ
    _, name = _first_env(BAETYL_ENV, environ)
    if name:
        return BAETYL_PATH, "%s is set, so a Baetyl master started the runtime" % name
    return OPENEDGE_PATH, "no Baetyl master variable (%s) is set" % ", ".join(BAETYL_ENV)


def _first_env(names, environ):
    for n in names:
        v = environ.get(n, "").strip()
        if v:
            return v, "$" + n
    return "", ""


def resolve_address(cfg, environ=None):
    """Returns (host:port, where it came from): the first variable of
    ADDRESS_ENV that is set, else server.address. A grpc://, grpcs:// or
    tcp:// scheme is stripped."""
    environ = os.environ if environ is None else environ
    addr, source = _first_env(ADDRESS_ENV, environ)
    if not addr and cfg.address:
        addr, source = cfg.address, "server.address"
    for scheme in ("grpc://", "grpcs://", "tcp://"):
        if addr.startswith(scheme):
            addr = addr[len(scheme):]
    return addr, source


def resolve_name(cfg, environ=None):
    """Returns the instance name: the first variable of NAME_ENV that is set, else name."""
    environ = os.environ if environ is None else environ
    name, _ = _first_env(NAME_ENV, environ)
    return name or cfg.name
