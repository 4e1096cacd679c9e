'use strict';
// runtime/config.js: the service.yml keys, Baetyl's logger keys, the
// default file, and errors that name the file and the line.
const { test } = require('node:test');
const assert = require('node:assert');
const config = require('../runtime/config');

test('defaults', () => {
  const c = config.parse('');
  assert.deepStrictEqual([c.server.maxMessageSize, c.server.timeout, c.logger.level, c.logger.format, c.functions], [4 << 20, 10000, 'info', 'text', []]);
});

test("Baetyl's logger keys are accepted", () => {
  const c = config.parse(`
functions:
  - {name: a, handler: index.handler, codedir: var/db/baetyl/function-a}
logger:
  path: var/log/baetyl/service.log
  level: debug
  format: json
  age:
    max: 15
  size:
    max: 50
  backup:
    max: 15
`);
  assert.deepStrictEqual(c.logger, { path: 'var/log/baetyl/service.log', level: 'debug', format: 'json', ageMax: 15, sizeMax: 50, backupMax: 15 });
  assert.deepStrictEqual(c.functions, [{ name: 'a', handler: 'index.handler', codedir: 'var/db/baetyl/function-a' }]);
});

test('errors name the file and the line', () => {
  const cases = {
    'nmae: x\n': 'service.yml:1: unknown key "nmae" in the top level',
    'name: x\nserver:\n  adress: a\n': 'service.yml:3: unknown key "adress" in server',
    'server:\n  message:\n    length: {maxx: 1}\n': 'service.yml:3: unknown key "maxx" in server.message.length',
    'functions:\n  - name: a\n    handle: b\n': 'service.yml:3: unknown key "handle" in functions[0]',
    'logger:\n  age: {max: 1, min: 1}\n': 'service.yml:2: unknown key "min" in logger.age',
    'logger:\n  age: {max: 0}\n': 'service.yml:2: logger.age.max: want a whole number >= 1, got 0',
    'logger:\n  size:\n    max: ten\n': 'service.yml:3: logger.size.max: want a whole number >= 1',
    'logger:\n  level: loud\n': 'service.yml:2: logger.level: "loud": want debug, info, warn, error',
    'logger:\n  format: xml\n': 'service.yml:2: logger.format: "xml": want text, json',
    'server:\n  timeout: soon\n': 'service.yml:2: server.timeout: duration "soon"',
    'server:\n  message: {length: {max: big}}\n': 'service.yml:2: server.message.length.max: size "big"',
    'server:\n  workers: {max: -1}\n': 'service.yml:2: server.workers.max: want a whole number >= 0',
    'server: 8080\n': 'service.yml:1: server: want a mapping, got a value',
    'functions: {name: a}\n': 'service.yml:1: functions: want a list, got a mapping',
    'name: a\nname: b\n': 'service.yml:2: Map keys must be unique',
    'functions:\n  - {name: f, handler: nodot}\n': 'service.yml:2: function "f": handler "nodot"',
    'functions:\n  - {name: f, handler: a.b}\n  - {name: f, handler: a.b}\n': 'service.yml:3: function "f" is configured twice',
    'server:\n  key: k\n': 'TLS needs both key and cert',
  };
  for (const [text, want] of Object.entries(cases)) {
    assert.throws(() => config.parse(text, 'service.yml'), (err) => {
      assert.ok(err.message.includes(want), `${JSON.stringify(text)}: ${err.message}; want ${want}`);
      return true;
    });
  }
});

test('a missing file', () => {
  assert.throws(() => config.load('/nonexistent/service.yml'), /read config \/nonexistent\/service.yml: no such file/);
});

test('the default file', () => {
  const cases = [
    [{}, 'etc/openedge/service.yml'],
    [{ OPENEDGE_SERVICE_ADDRESS: '127.0.0.1:1', BAETYL_MASTER_API_VERSION: 'v1' }, 'etc/openedge/service.yml'],
    [{ BAETYL_SERVICE_NAME: ' ' }, 'etc/openedge/service.yml'],
    [{ BAETYL_SERVICE_INSTANCE_ADDRESS: '127.0.0.1:1' }, 'etc/baetyl/service.yml'],
    [{ BAETYL_SERVICE_INSTANCE_NAME: 'f.g.1' }, 'etc/baetyl/service.yml'],
    [{ BAETYL_SERVICE_NAME: 'f' }, 'etc/baetyl/service.yml'],
  ];
  for (const [env, want] of cases) {
    const { file, why } = config.defaultPath(env);
    assert.strictEqual(file, want, JSON.stringify(env));
    assert.ok(why);
  }
});
