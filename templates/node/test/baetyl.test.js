'use strict';
// The runtime started as a Baetyl master starts it, with a function written
// for Baetyl's Node runtime; the default configuration file under each of
// the master's variables; errors at start on stderr with a log file.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const grpc = require('@grpc/grpc-js');
const { root, freePort, client, call, start, killAll, within, write, masterEnv } = require('./helpers');

after(killAll);

function tmpdir(t) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'runtime-test-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

// A function written the way Baetyl's documentation and samples write them
// for Baetyl's Node runtime: a callback, an event that is an object (also
// {} for an empty payload) or a Buffer, a plain object as context. It must
// run here unchanged.
const BAETYL_FUNCTION = `
exports.handler = (event, context, callback) => {
  if (!Buffer.isBuffer(event) && typeof event === 'object' && event !== null && 'fail' in event) {
    return callback(new TypeError(event.fail));
  }
  const reply = { kind: Buffer.isBuffer(event) ? 'buffer' : typeof event, context: JSON.parse(JSON.stringify(context)) };
  if (Buffer.isBuffer(event)) reply.text = event.toString();
  else reply.event = event;
  callback(null, reply);
};
exports.keep = (event, context, callback) => {
  event.seen = (event.seen || 0) + 1;
  callback(null, event);
};
exports.nothing = (event, context, callback) => callback(null);
exports.nullish = (event, context, callback) => callback(null, null);
exports.emptyText = (event, context, callback) => callback(null, '');
exports.raw = (event, context, callback) => callback(null, Buffer.from([0, 0xff, 0x72]));
`;

const BAETYL_CONFIG = `
functions:
${['handler', 'keep', 'nothing', 'nullish', 'emptyText', 'raw'].map((f) => `  - name: js-${f}
    handler: index.${f}
    codedir: var/db/baetyl/function-code`).join('\n')}
logger:
  path: var/log/baetyl/service.log
  level: debug
  format: text
  age:
    max: 15
  size:
    max: 50
  backup:
    max: 15
`;

describe('started as a Baetyl master starts it', () => {
  // In var/run/baetyl/services/SERVICE, no -c, argv[0] the instance name,
  // the master's variables; the configuration and the code are links to
  // their volumes; the configuration has Baetyl's logger keys and a log
  // directory that does not exist yet. etc/openedge/service.yml serves
  // another function, so that reading the wrong file shows.
  const instance = 'function-js.js-handler.1';
  let dir;
  let wd;
  let rt;
  let baetyl;
  let openedge;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runtime-test-'));
    const volume = path.join(dir, 'var/db/baetyl/function-js-conf');
    const code = path.join(dir, 'var/db/baetyl/function-js-code');
    write(path.join(volume, 'service.yml'), BAETYL_CONFIG);
    write(path.join(code, 'index.js'), BAETYL_FUNCTION);
    wd = path.join(dir, 'var/run/baetyl/services/function-js');
    write(path.join(wd, 'etc/openedge/service.yml'), 'functions:\n  - {name: from-openedge, handler: index.handler, codedir: var/db/baetyl/function-code}\n');
    fs.symlinkSync(volume, path.join(wd, 'etc/baetyl'));
    fs.mkdirSync(path.join(wd, 'var/db/baetyl'), { recursive: true });
    fs.symlinkSync(code, path.join(wd, 'var/db/baetyl/function-code'));
    const address = `127.0.0.1:${await freePort()}`;
    rt = start({ cwd: wd, argv0: instance, env: masterEnv('function-js', instance, address) });
    baetyl = client(address, 'baetyl');
    openedge = client(address, 'openedge');
    await call(baetyl, 'js-nothing');
  });
  after(() => {
    baetyl.close();
    openedge.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('reads etc/baetyl/service.yml without -c', async () => {
    const res = await call(baetyl, 'js-handler', '{}');
    assert.strictEqual(JSON.parse(res.Payload).kind, 'object');
    await assert.rejects(call(baetyl, 'from-openedge'), (err) => err.code === grpc.status.NOT_FOUND);
  });

  test('the event is the JSON value, a Buffer, or a new {} when empty', async () => {
    let out = JSON.parse((await call(baetyl, 'js-handler', '{"a": [1, 2]}')).Payload);
    assert.deepStrictEqual([out.kind, out.event], ['object', { a: [1, 2] }]);
    out = JSON.parse((await call(baetyl, 'js-handler', Buffer.from([0xff, 0x6e, 0x6f]))).Payload);
    assert.deepStrictEqual([out.kind, out.text], ['buffer', '\ufffdno']);
    out = JSON.parse((await call(baetyl, 'js-handler', '')).Payload);
    assert.deepStrictEqual([out.kind, out.event], ['object', {}]);
    for (let i = 0; i < 2; i++) {
      assert.deepStrictEqual(JSON.parse((await call(baetyl, 'js-keep')).Payload), { seen: 1 });
    }
  });

  test("the context is exactly Baetyl's", async () => {
    const extra = { QOS: 1, Topic: 't/a', Timestamp: 1563452817, FunctionInvokeID: 'inv-9' };
    let out = JSON.parse((await call(baetyl, 'js-handler', '1', extra)).Payload);
    assert.deepStrictEqual(out.context, {
      messageQOS: 1,
      messageTopic: 't/a',
      messageTimestamp: 1563452817,
      functionName: 'js-handler',
      functionInvokeID: 'inv-9',
      invokeid: 'inv-9',
    });
    // An OpenEdge call has no Timestamp: 0.
    out = JSON.parse((await call(openedge, 'js-handler', '1', { FunctionInvokeID: 'i' })).Payload);
    assert.deepStrictEqual([out.context.messageTimestamp, out.context.invokeid], [0, 'i']);
  });

  test('nothing, null and "" are an empty payload; a Buffer goes as it is', async () => {
    for (const fn of ['js-nothing', 'js-nullish', 'js-emptyText']) {
      assert.strictEqual((await call(baetyl, fn, '{"x": 1}')).Payload.length, 0, fn);
    }
    assert.deepStrictEqual([...(await call(baetyl, 'js-raw')).Payload], [0, 0xff, 0x72]);
  });

  test('an error fails the call with its message', async () => {
    await assert.rejects(call(baetyl, 'js-handler', '{"fail": "bad input"}'),
      (err) => err.code === grpc.status.UNKNOWN && /bad input/.test(err.details));
  });

  test('it logs to the created directory, and stops on SIGTERM with status 0', async () => {
    rt.child.kill('SIGTERM');
    assert.strictEqual(await within(rt.exited, 10000, 'exit after SIGTERM'), 0, rt.stderr());
    const log = fs.readFileSync(path.join(wd, 'var/log/baetyl/service.log'), 'utf8');
    assert.match(log, new RegExp(`runtime ${instance.replace(/\./g, '\\.')} serving`));
    assert.match(log, /runtime stopped/);
    assert.strictEqual(rt.stderr(), '', 'with logger.path set, a normal run writes nothing to stderr');
  });
});

test('the default configuration follows the Baetyl variables', async (t) => {
  const cases = [
    ['no Baetyl variable', (a) => ({ OPENEDGE_SERVICE_ADDRESS: a, OPENEDGE_SERVICE_NAME: 'x' }), 'from-openedge'],
    ['BAETYL_SERVICE_INSTANCE_ADDRESS', (a) => ({ BAETYL_SERVICE_INSTANCE_ADDRESS: a }), 'from-baetyl'],
    ['BAETYL_SERVICE_INSTANCE_NAME', (a) => ({ OPENEDGE_SERVICE_ADDRESS: a, BAETYL_SERVICE_INSTANCE_NAME: 'x.y.1' }), 'from-baetyl'],
    ['BAETYL_SERVICE_NAME', (a) => ({ OPENEDGE_SERVICE_ADDRESS: a, BAETYL_SERVICE_NAME: 'x' }), 'from-baetyl'],
    ['an empty BAETYL_SERVICE_NAME', (a) => ({ OPENEDGE_SERVICE_ADDRESS: a, BAETYL_SERVICE_NAME: '' }), 'from-openedge'],
  ];
  const codedir = path.join(root, 'functions', 'conformance');
  for (const [name, env, want] of cases) {
    await t.test(name, async (t) => {
      const wd = tmpdir(t);
      for (const which of ['openedge', 'baetyl']) {
        write(path.join(wd, 'etc', which, 'service.yml'), `functions:\n  - {name: from-${which}, handler: fixtures.echo, codedir: ${codedir}}\n`);
      }
      const address = `127.0.0.1:${await freePort()}`;
      const rt = start({ cwd: wd, env: env(address) });
      const c = client(address);
      t.after(() => c.close());
      assert.strictEqual((await call(c, want, 'x')).Payload.toString(), 'x', rt.stderr());
      rt.child.kill('SIGTERM');
      assert.strictEqual(await within(rt.exited, 10000, 'exit'), 0);
    });
  }
});

describe('errors at start go to stderr, also with a log file', () => {
  const logger = 'logger:\n  path: var/log/rt/service.log\n';
  const echo = `functions:\n  - {name: f, handler: fixtures.echo, codedir: ${path.join(root, 'functions', 'conformance')}}\n`;
  // run starts the runtime with config as etc/openedge/service.yml and
  // returns its exit status, its stderr and the log file (or null).
  async function run(t, config, { env = {}, args = ['-c', 'etc/openedge/service.yml'] } = {}) {
    const wd = tmpdir(t);
    write(path.join(wd, 'etc/openedge/service.yml'), config);
    write(path.join(wd, 'afile'), 'a file, not a directory');
    const rt = start({ cwd: wd, env, args });
    const code = await within(rt.exited, 15000, 'exit');
    const logFile = path.join(wd, 'var/log/rt/service.log');
    return { code, stderr: rt.stderr(), log: fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : null };
  }

  test('a function that cannot be loaded: 2', async (t) => {
    const r = await run(t, `functions:\n  - {name: f, handler: nope.handler, codedir: .}\n${logger}`, { env: { OPENEDGE_SERVICE_ADDRESS: `127.0.0.1:${await freePort()}` } });
    assert.strictEqual(r.code, 2, r.stderr);
    assert.match(r.stderr, /function "f": require .*nope/);
    assert.match(r.log, /function "f": require .*nope/);
  });

  test('no address: 2', async (t) => {
    const r = await run(t, echo + logger);
    assert.strictEqual(r.code, 2, r.stderr);
    assert.match(r.stderr, /no address to listen on/);
    assert.match(r.log, /no address to listen on/);
  });

  test('a port that is taken: 1', async (t) => {
    const taken = net.createServer();
    await new Promise((resolve) => taken.listen(0, '127.0.0.1', resolve));
    t.after(() => taken.close());
    const address = `127.0.0.1:${taken.address().port}`;
    const r = await run(t, echo + logger, { env: { OPENEDGE_SERVICE_ADDRESS: address } });
    assert.strictEqual(r.code, 1, r.stderr);
    assert.ok(r.stderr.includes(`listen on ${address}`), r.stderr);
    assert.ok(r.log.includes(`listen on ${address}`), r.log);
  });

  test('an unknown key names the file and the line: 2', async (t) => {
    const r = await run(t, `${echo + logger}  rotate: daily\n`);
    assert.strictEqual(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes('etc/openedge/service.yml:5: unknown key "rotate" in logger'), r.stderr);
  });

  // Baetyl's example configurations name var/log/baetyl/service.log, which
  // a container's user may be unable to create: the runtime says so on
  // stderr, logs there and serves.
  test('a log file that cannot be opened: on stderr, and it serves', async (t) => {
    const wd = tmpdir(t);
    write(path.join(wd, 'etc/openedge/service.yml'), `${echo}logger:\n  path: afile/service.log\n`);
    write(path.join(wd, 'afile'), 'a file, not a directory');
    const address = `127.0.0.1:${await freePort()}`;
    const rt = start({ cwd: wd, env: { OPENEDGE_SERVICE_ADDRESS: address }, args: ['-c', 'etc/openedge/service.yml'] });
    const c = client(address);
    t.after(() => c.close());
    assert.strictEqual((await call(c, 'f', 'x')).Payload.toString(), 'x', rt.stderr());
    rt.child.kill('SIGTERM');
    assert.strictEqual(await within(rt.exited, 10000, 'exit'), 0, rt.stderr());
    assert.match(rt.stderr(), /logger.path afile\/service.log: .*; logging to stderr instead/);
    assert.match(rt.stderr(), / serving /);
  });

  test('a missing default file says which and why: 2', async (t) => {
    const r = await run(t, echo, { env: { BAETYL_SERVICE_NAME: 'svc' }, args: [] });
    assert.strictEqual(r.code, 2, r.stderr);
    for (const want of ['etc/baetyl/service.yml', '$BAETYL_SERVICE_NAME is set', '-c']) assert.ok(r.stderr.includes(want), r.stderr);
  });

  test('an empty -c: 2', async (t) => {
    const r = await run(t, echo, { args: ['-c', ''] });
    assert.strictEqual(r.code, 2, r.stderr);
    assert.match(r.stderr, /-c needs a file/);
  });
});
