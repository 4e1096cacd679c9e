'use strict';
// Starts the runtime with the project's etc/openedge/service.yml as a
// process and calls it over real gRPC on 127.0.0.1.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const config = require('../runtime/config');
const { root, freePort, client, call, start, killAll, within } = require('./helpers');

let rt;
let c;
let address;

before(async () => {
  address = `127.0.0.1:${await freePort()}`;
  rt = start({ args: ['-c', 'etc/openedge/service.yml'], env: { OPENEDGE_SERVICE_ADDRESS: address } });
  c = client(address);
  await call(c, 'none');
});

after(() => {
  if (c) c.close();
  killAll();
});

test('echo returns JSON as an equal value and bytes as they are', async () => {
  let res = await call(c, 'echo', '{"a": [1, 2]}', { ID: 7, QOS: 1, Topic: 't', FunctionInvokeID: 'inv' });
  assert.deepStrictEqual(JSON.parse(res.Payload.toString()), { a: [1, 2] });
  assert.strictEqual(res.ID, 7);
  assert.strictEqual(res.Topic, 't');
  assert.strictEqual(res.FunctionInvokeID, 'inv');
  res = await call(c, 'echo', Buffer.from([0xff, 0, 1]));
  assert.deepStrictEqual([...res.Payload], [0xff, 0, 1]);
});

test('echo of an empty payload is empty under OpenEdge, {} under Baetyl', async (t) => {
  assert.strictEqual((await call(c, 'echo', '')).Payload.length, 0);
  const bc = client(address, 'baetyl');
  t.after(() => bc.close());
  assert.strictEqual((await call(bc, 'echo', '')).Payload.toString(), '{}');
});

test('context and none', async () => {
  const res = await call(c, 'context', '', { QOS: 1, Topic: 'a/b', FunctionInvokeID: 'id-7' });
  assert.deepStrictEqual(JSON.parse(res.Payload), { messageQOS: 1, messageTopic: 'a/b', functionName: 'context', functionInvokeID: 'id-7' });
  assert.strictEqual((await call(c, 'none', '{"x": 1}')).Payload.length, 0);
});

test('sayhi greets', async () => {
  const res = await call(c, 'sayhi', '{"name": "edge"}', { Topic: 'greet' });
  assert.deepStrictEqual(JSON.parse(res.Payload.toString()), { say: 'hi edge', topic: 'greet' });
});

test('a failing function gives UNKNOWN with its message', async () => {
  await assert.rejects(call(c, 'fail', ''), (err) => err.code === grpc.status.UNKNOWN && /conformance failure/.test(err.details));
});

test('an unknown function gives NOT_FOUND', async () => {
  await assert.rejects(call(c, 'nope', ''), (err) => err.code === grpc.status.NOT_FOUND);
});

test('the instance name comes from the environment, else the config', async (t) => {
  const { name } = config.load(path.join(root, 'etc/openedge/service.yml'));
  assert.match(rt.stderr(), new RegExp(`runtime ${name} serving`));
  const address = `127.0.0.1:${await freePort()}`;
  const other = start({ args: ['-c', 'etc/openedge/service.yml'], env: { OPENEDGE_SERVICE_ADDRESS: address, OPENEDGE_SERVICE_NAME: 'fn.sayhi.3' } });
  const oc = client(address);
  t.after(() => oc.close());
  await call(oc, 'none');
  assert.match(other.stderr(), /runtime fn\.sayhi\.3 serving/);
  other.child.kill('SIGTERM');
  assert.strictEqual(await within(other.exited, 10000, 'exit'), 0);
});

test('SIGTERM stops it with status 0', async () => {
  rt.child.kill('SIGTERM');
  assert.strictEqual(await within(rt.exited, 10000, 'exit after SIGTERM'), 0, rt.stderr());
});
