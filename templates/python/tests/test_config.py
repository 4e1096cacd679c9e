"""runtime.config: the service.yml keys, their defaults and their errors."""

import unittest

from helpers import ROOT  # noqa: F401  (puts the project on sys.path)
from runtime import config


class ParseTest(unittest.TestCase):
    def test_defaults(self):
        c = config.parse(b"")
        self.assertEqual((c.max_message, c.timeout, c.workers_max, c.concurrent_max), (4 << 20, 10.0, 6, None))
        self.assertEqual((c.logger_level, c.logger_format, c.functions), ("info", "text", []))

    def test_full(self):
        c = config.parse(
            b"""
name: rt
server:
  address: grpc://127.0.0.1:1
  timeout: 1m30s
  message: {length: {max: 512k}}
  concurrent: {max: 3}
  workers: {max: 2}
  key: k.pem
  cert: c.pem
  ca: ca.pem
functions:
  - name: f
    handler: pkg.mod.handler
    codedir: d
logger: {path: log/x.log, level: debug, format: json}
"""
        )
        self.assertEqual((c.name, c.timeout, c.max_message, c.concurrent_max, c.workers_max), ("rt", 90.0, 512 << 10, 3, 2))
        self.assertEqual((c.key, c.cert, c.ca), ("k.pem", "c.pem", "ca.pem"))
        self.assertEqual([(f.name, f.handler, f.codedir) for f in c.functions], [("f", "pkg.mod.handler", "d")])
        self.assertEqual(config.resolve_address(c, {}), ("127.0.0.1:1", "server.address"))

    def test_sizes(self):
        for text, want in (("4194304", 4 << 20), ("4m", 4 << 20), ("4MiB", 4 << 20), ("4MB", 4 << 20), ("512k", 512 << 10), ("1.5m", 3 << 19)):
            self.assertEqual(config.parse_size(text), want, text)
        with self.assertRaises(ValueError):
            config.parse_size("lots")

    def test_durations(self):
        for text, want in (("30s", 30.0), ("500ms", 0.5), ("1h2m3s", 3723.0), ("0", 0.0), ("1.5s", 1.5), ("30", 3e-8)):
            self.assertAlmostEqual(config.parse_duration(text), want, msg=text)
        for bad in ("30.5", "s", "1x", "-1s"):
            with self.assertRaises(ValueError, msg=bad):
                config.parse_duration(bad)

    def assertError(self, text, want):
        with self.assertRaises(config.ConfigError) as cm:
            config.parse(text, "service.yml")
        self.assertIn(want, str(cm.exception))

    def test_errors_name_file_and_line(self):
        self.assertError(b"name: x\nserver:\n  adress: a\n", "service.yml:3: unknown key 'adress' in server")
        self.assertError(b"nmae: x\n", "service.yml:1: unknown key 'nmae' in the top level")
        self.assertError(b"server:\n  timeout: 30.5\n", "service.yml:2: server.timeout: duration '30.5'")
        self.assertError(b"server:\n  message: {length: {max: big}}\n", "service.yml:2: server.message.length.max: size 'big'")
        self.assertError(b"name: a\nname: b\n", "service.yml:2: key 'name' given twice")
        self.assertError(b"functions:\n  - {name: f, handler: nodot}\n", "service.yml:2: function 'f': handler 'nodot'")
        self.assertError(b"functions:\n  - {name: f, handler: a.b}\n  - {name: f, handler: a.b}\n", "service.yml:3: function 'f' is configured twice")
        self.assertError(b"server:\n  key: k\n", "TLS needs both key and cert")
        self.assertError(b"server:\n  ca: c\n", "ca (mutual TLS) needs key and cert")
        self.assertError(b"logger: {level: loud}\n", "logger.level 'loud'")
        self.assertError(b"functions: {name: f}\n", "service.yml:1: functions: want a list, got a mapping")
        self.assertError(b"server: [1\n", "service.yml:")
        self.assertError(b"server:\n  workers: {max: -1}\n", "server.workers.max")

    def test_baetyl_logger_keys(self):
        c = config.parse(
            b"logger:\n  path: var/log/baetyl/service.log\n  level: debug\n  format: json\n"
            b"  age:\n    max: 15\n  size:\n    max: 50\n  backup:\n    max: 15\n"
        )
        self.assertEqual((c.logger_path, c.logger_level, c.logger_format), ("var/log/baetyl/service.log", "debug", "json"))
        self.assertEqual((c.logger_age_max, c.logger_size_max, c.logger_backup_max), (15, 50, 15))
        self.assertError(b"logger:\n  age: {max: 0}\n", "service.yml:2: logger.age.max: want a whole number >= 1, got '0'")
        self.assertError(b"logger:\n  size:\n    max: ten\n", "service.yml:3: logger.size.max: want a whole number >= 1")
        self.assertError(b"logger:\n  backup: {max: 1, min: 1}\n", "service.yml:2: unknown key 'min' in logger.backup")
        self.assertError(b"logger:\n  format: xml\n", "logger.format 'xml'")

    def test_load_missing_file(self):
        with self.assertRaises(config.ConfigError) as cm:
            config.load("/nonexistent/service.yml")
        self.assertIn("read config /nonexistent/service.yml", str(cm.exception))


class EnvironmentTest(unittest.TestCase):
    def test_address_order(self):
        c = config.parse(b"server: {address: 127.0.0.1:9}")
        env = {
            "OPENEDGE_SERVICE_ADDRESS": "127.0.0.1:3",
            "OPENEDGE_SERVICE_INSTANCE_ADDRESS": "tcp://127.0.0.1:2",
            "BAETYL_SERVICE_INSTANCE_ADDRESS": "127.0.0.1:1",
        }
        self.assertEqual(config.resolve_address(c, env), ("127.0.0.1:1", "$BAETYL_SERVICE_INSTANCE_ADDRESS"))
        del env["BAETYL_SERVICE_INSTANCE_ADDRESS"]
        self.assertEqual(config.resolve_address(c, env), ("127.0.0.1:2", "$OPENEDGE_SERVICE_INSTANCE_ADDRESS"))
        del env["OPENEDGE_SERVICE_INSTANCE_ADDRESS"]
        self.assertEqual(config.resolve_address(c, env), ("127.0.0.1:3", "$OPENEDGE_SERVICE_ADDRESS"))
        self.assertEqual(config.resolve_address(c, {"OPENEDGE_SERVICE_ADDRESS": " "}), ("127.0.0.1:9", "server.address"))

    def test_default_path(self):
        for env, want in (
            ({}, "etc/openedge/service.yml"),
            ({"OPENEDGE_SERVICE_ADDRESS": "127.0.0.1:1", "BAETYL_MASTER_API_VERSION": "v1"}, "etc/openedge/service.yml"),
            ({"BAETYL_SERVICE_NAME": " "}, "etc/openedge/service.yml"),
            ({"BAETYL_SERVICE_INSTANCE_ADDRESS": "127.0.0.1:1"}, "etc/baetyl/service.yml"),
            ({"BAETYL_SERVICE_INSTANCE_NAME": "f.g.1"}, "etc/baetyl/service.yml"),
            ({"BAETYL_SERVICE_NAME": "f"}, "etc/baetyl/service.yml"),
        ):
            path, why = config.default_path(env)
            self.assertEqual(path, want, env)
            self.assertTrue(why)

    def test_name_order(self):
        c = config.parse(b"name: conf")
        self.assertEqual(config.resolve_name(c, {}), "conf")
        self.assertEqual(config.resolve_name(c, {"OPENEDGE_SERVICE_NAME": "a", "BAETYL_SERVICE_INSTANCE_NAME": "b"}), "b")


if __name__ == "__main__":
    unittest.main()
