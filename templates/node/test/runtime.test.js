'use strict';
// Starts the runtime as a process and calls it over real gRPC on 127.0.0.1.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const net = require('node:net');
const { spawn } = require('node:child_process');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const root = path.join(__dirname, '..');
let child;
let client;

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function call(fn, payload, extra = {}) {
  return new Promise((resolve, reject) => {
    client.Call({ FunctionName: fn, Payload: Buffer.from(payload), ...extra }, { deadline: Date.now() + 5000 },
      (err, res) => (err ? reject(err) : resolve(res)));
  });
}

before(async () => {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  child = spawn(path.join(root, 'bin', 'runtime'), ['-c', 'etc/openedge/service.yml'], {
    cwd: root, env: { ...process.env, OPENEDGE_SERVICE_ADDRESS: address }, stdio: ['ignore', 'ignore', 'inherit'],
  });
  const def = protoLoader.loadSync(path.join(root, 'proto', 'function.proto'), { keepCase: true, longs: Number, defaults: true });
  const Function = grpc.loadPackageDefinition(def).openedge.Function;
  client = new Function(address, grpc.credentials.createInsecure());
  await new Promise((resolve, reject) => client.waitForReady(Date.now() + 10000, (err) => (err ? reject(err) : resolve())));
});

after(() => {
  if (client) client.close();
  if (child && child.exitCode === null) child.kill('SIGTERM');
});

test('echo returns JSON as an equal value and bytes as they are', async () => {
  let res = await call('echo', '{"a": [1, 2]}', { ID: 7, QOS: 1, Topic: 't', FunctionInvokeID: 'inv' });
  assert.deepStrictEqual(JSON.parse(res.Payload.toString()), { a: [1, 2] });
  assert.strictEqual(res.ID, 7);
  assert.strictEqual(res.Topic, 't');
  assert.strictEqual(res.FunctionInvokeID, 'inv');
  res = await call('echo', Buffer.from([0xff, 0, 1]));
  assert.deepStrictEqual([...res.Payload], [0xff, 0, 1]);
});

test('sayhi greets', async () => {
  const res = await call('sayhi', '{"name": "edge"}', { Topic: 'greet' });
  assert.deepStrictEqual(JSON.parse(res.Payload.toString()), { say: 'hi edge', topic: 'greet' });
});

test('a failing function gives UNKNOWN with its message', async () => {
  await assert.rejects(call('fail', ''), (err) => err.code === grpc.status.UNKNOWN && /conformance failure/.test(err.details));
});

test('an unknown function gives NOT_FOUND', async () => {
  await assert.rejects(call('nope', ''), (err) => err.code === grpc.status.NOT_FOUND);
});
