'use strict';
// Starting bin/runtime as a real process for the tests and calling it over
// real gRPC on 127.0.0.1. Every wait is bounded; every process started is
// killed, if still running, when the test ends.
const fs = require('node:fs');
const path = require('node:path');
const net = require('node:net');
const { spawn } = require('node:child_process');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const root = path.join(__dirname, '..');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().on('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// client returns a Function client of package pkg (openedge or baetyl).
function client(address, pkg = 'openedge') {
  const file = pkg === 'baetyl' ? 'baetyl/function.proto' : 'function.proto';
  const def = protoLoader.loadSync(path.join(root, 'proto', file), { keepCase: true, longs: Number, defaults: true });
  const Function = grpc.loadPackageDefinition(def)[pkg].Function;
  return new Function(address, grpc.credentials.createInsecure());
}

// call calls fn with payload (and other fields), waiting up to 10 s for the
// runtime to listen.
function call(c, fn, payload = '', extra = {}) {
  const deadline = Date.now() + 10000;
  return new Promise((resolve, reject) => {
    c.waitForReady(deadline, (err) => {
      if (err) {
        reject(err);
        return;
      }
      c.Call({ FunctionName: fn, Payload: Buffer.from(payload), ...extra }, { deadline },
        (e, res) => (e ? reject(e) : resolve(res)));
    });
  });
}

const started = new Set();

// start starts bin/runtime in cwd with argv[0] argv0 and the arguments
// args. Of this process's environment, the convention's variables
// (BAETYL_*, OPENEDGE_*) are left out; env is added. It returns the child,
// a function giving what it wrote to stderr so far, and a promise of its
// exit status (a number, or the signal's name). killAll kills whatever is
// still running.
function start({ cwd = root, argv0, env = {}, args = [] } = {}) {
  const clean = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(BAETYL|OPENEDGE)_/.test(k)) clean[k] = v;
  const launcher = path.join(root, 'bin', 'runtime');
  const child = spawn(launcher, args, { cwd, env: { ...clean, ...env }, argv0: argv0 || launcher, stdio: ['ignore', 'ignore', 'pipe'] });
  started.add(child);
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => {
    started.delete(child);
    resolve(code === null ? signal : code);
  }));
  return { child, stderr: () => stderr, exited };
}

function killAll() {
  for (const child of started) child.kill('SIGKILL');
}

// within rejects when p takes more than ms.
function within(p, ms, what) {
  let timer;
  return Promise.race([p, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(timer));
}

function write(file, text) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

// masterEnv is the environment a Baetyl 1.0 master gives an instance
// (native mode).
function masterEnv(service, instance, address) {
  return {
    BAETYL_SERVICE_INSTANCE_ADDRESS: address,
    OPENEDGE_SERVICE_INSTANCE_ADDRESS: address,
    OPENEDGE_SERVICE_ADDRESS: address,
    BAETYL_SERVICE_INSTANCE_NAME: instance,
    OPENEDGE_SERVICE_INSTANCE_NAME: instance,
    BAETYL_SERVICE_NAME: service,
    OPENEDGE_SERVICE_NAME: service,
    BAETYL_MASTER_API_ADDRESS: 'unix://var/run/baetyl.sock',
    BAETYL_MASTER_API_VERSION: 'v1',
    BAETYL_SERVICE_MODE: 'native',
    BAETYL_HOST_OS: 'linux',
    OPENEDGE_RUNNING_MODE: 'native',
  };
}

module.exports = { root, freePort, client, call, start, killAll, within, write, masterEnv };
