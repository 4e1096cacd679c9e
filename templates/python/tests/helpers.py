"""Starting the runtime as a real process for the tests, and talking to it
over real gRPC on 127.0.0.1. Every wait is bounded; every process started is
stopped and reaped."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from runtime import function_pb2, function_pb2_grpc  # noqa: E402

TESTDATA = os.path.join(ROOT, "tests", "testdata")
MIB = 1 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runtime(object):
    """bin/runtime started with args in cwd, listening on a free port.

    Of this process's environment, the convention's variables (BAETYL_*,
    OPENEDGE_*) are left out; the address is given in address_env (None:
    in no variable), then env is added (a dict, or a function of the
    address that returns one). argv0 is the runtime's argv[0] (a
    master sets the instance name there); serving_log is the file in which
    the runtime says it is serving (default: its standard error)."""

    def __init__(self, args=(), cwd=ROOT, env=None, address_env="OPENEDGE_SERVICE_ADDRESS", argv0=None, serving_log=None):
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        e = {k: v for k, v in os.environ.items() if not k.startswith(("BAETYL_", "OPENEDGE_"))}
        if address_env:
            e[address_env] = self.address
        e["PYTHON"] = sys.executable  # the interpreter running the tests has the dependencies
        e.update((env(self.address) if callable(env) else env) or {})
        self.serving_log = serving_log
        fd, self.log_path = tempfile.mkstemp(prefix="runtime-", suffix=".log")
        os.close(fd)
        launcher = os.path.join(ROOT, "bin", "runtime")
        with open(self.log_path, "ab") as stderr:  # the child appends; log() reads on its own
            self.proc = subprocess.Popen(
                [argv0 or launcher] + list(args),
                executable=launcher,
                cwd=cwd,
                env=e,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self.channels = []

    def log(self):
        """What the runtime has written to its standard error so far."""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def file_log(self):
        """What the runtime has written to serving_log so far ("" when it does not exist yet)."""
        try:
            with open(self.serving_log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def channel(self, credentials=None, options=()):
        opts = [("grpc.max_receive_message_length", 8 * MIB), ("grpc.max_send_message_length", 8 * MIB)]
        opts += list(options)
        if credentials is not None:
            ch = grpc.secure_channel(self.address, credentials, options=opts)
        else:
            ch = grpc.insecure_channel(self.address, options=opts)
        self.channels.append(ch)
        return ch

    def wait_ready(self, timeout=15, credentials=None, options=()):
        """Waits until the runtime says it is serving (so that what answers
        on the port is this process, not another one that took the port)
        and a Call is answered, with any status; returns a stub."""
        deadline = time.monotonic() + timeout
        while " serving " not in (self.file_log() if self.serving_log else self.log()):
            if self.proc.poll() is not None:
                raise AssertionError("runtime exited with %s:\n%s" % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise AssertionError("runtime not serving on %s after %ss:\n%s" % (self.address, timeout, self.log()))
            time.sleep(0.02)
        stub = function_pb2_grpc.FunctionStub(self.channel(credentials, options))
        try:
            stub.Call(function_pb2.FunctionMessage(FunctionName="echo"), timeout=max(1, deadline - time.monotonic()))
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise AssertionError("runtime on %s does not answer: %s\n%s" % (self.address, e, self.log()))
        return stub

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait(self, timeout=15):
        """Waits for the runtime to exit; returns its status (killed after timeout)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("runtime did not exit within %ss:\n%s" % (timeout, self.log()))

    def close(self):
        for ch in self.channels:
            ch.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        os.remove(self.log_path)


def message(name, payload=b"", package="openedge", **fields):
    return function_pb2.MESSAGES[package](FunctionName=name, Payload=payload, **fields)
