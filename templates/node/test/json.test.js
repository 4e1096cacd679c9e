'use strict';
// runtime/json.js: JSON whose integers beyond 2^53 keep their digits, as
// BigInts, and come back as written (conform's echo.json-integers).
const { test } = require('node:test');
const assert = require('node:assert');
const json = require('../runtime/json');

test('integers beyond 2^53 are BigInts and come back exact', () => {
  const text = '{"id":9007199254740993,"list":[-12345678901234567890123,9007199254740991,1.5],"n":{"big":18446744073709551617}}';
  const v = json.parse(text);
  assert.strictEqual(v.id, 9007199254740993n);
  assert.strictEqual(v.list[0], -12345678901234567890123n);
  assert.strictEqual(v.list[1], 9007199254740991, 'a safe integer stays a Number');
  assert.strictEqual(json.stringify(v), text);
});

test('digits in strings, fractions and exponents are left alone', () => {
  const text = '["9007199254740993",1.12345678901234567,1e-12345678901234567,"a\\\\"]';
  assert.deepStrictEqual(json.parse(text), JSON.parse(text));
});

test('what JSON.parse does otherwise', () => {
  assert.throws(() => json.parse('hello world'), SyntaxError);
  assert.throws(() => json.parse('[9007199254740993'), SyntaxError);
  const v = json.parse('{"__proto__":{"x":1},"n":99999999999999999}');
  assert.deepStrictEqual(Object.keys(v), ['__proto__', 'n'], '__proto__ is a key, as with JSON.parse');
  assert.strictEqual(Object.getPrototypeOf(v), Object.prototype);
  assert.strictEqual(json.stringify({ n: 10n, s: 'x' }), '{"n":10,"s":"x"}');
  assert.strictEqual(json.stringify(undefined), undefined);
  assert.strictEqual(json.stringify('\u0000oe-rt-bigint-x:1'), JSON.stringify('\u0000oe-rt-bigint-x:1'), 'a string that looks like a mark stays a string');
});
