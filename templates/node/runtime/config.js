'use strict';
// Reads the runtime's configuration: the keys of the OpenEdge/Baetyl
// convention's service.yml. Unknown keys, keys given twice and bad values
// are errors that name the file and the line, so that a typo is never
// silently ignored.
//
// Without -c the runtime reads BAETYL_PATH when a Baetyl master started it
// (any variable of BAETYL_ENV is set), else OPENEDGE_PATH: see defaultPath.
const fs = require('node:fs');
const YAML = require('yaml');

// The configuration files read when -c is not given: a Baetyl master mounts
// the instance's configuration at BAETYL_PATH (relative to the instance's
// working directory) and passes no -c; OPENEDGE_PATH otherwise.
const BAETYL_PATH = 'etc/baetyl/service.yml';
const OPENEDGE_PATH = 'etc/openedge/service.yml';
// The variables by which a Baetyl master is recognised: it sets all of them
// for every instance it starts.
const BAETYL_ENV = ['BAETYL_SERVICE_INSTANCE_ADDRESS', 'BAETYL_SERVICE_INSTANCE_NAME', 'BAETYL_SERVICE_NAME'];

// firstEnv returns the first variable of names set to a non-empty value, as
// [value, name], or ['', ''].
function firstEnv(names, env = process.env) {
  for (const n of names) if (env[n] && env[n].trim()) return [env[n].trim(), n];
  return ['', ''];
}

// defaultPath returns the file to read when -c is not given, and why.
function defaultPath(env = process.env) {
  const [, name] = firstEnv(BAETYL_ENV, env);
  if (name) return { file: BAETYL_PATH, why: `$${name} is set, so a Baetyl master started the runtime` };
  return { file: OPENEDGE_PATH, why: `no Baetyl master variable (${BAETYL_ENV.join(', ')}) is set` };
}

// parseSize reads a byte count as Baetyl's function manager does (go-units'
// RAMInBytes): plain bytes (4194304) or a number, fractions too, with a
// 1024-based unit (4m, 512k, 4MiB, 4MB, 4.5m); fractions of a byte are
// dropped.
function parseSize(v) {
  const m = /^\s*(\d+(?:\.\d+)?) ?([kmgtp]?)(i?b)?\s*$/i.exec(String(v));
  if (!m) throw new Error(`size "${v}": want bytes or a number with a unit such as 4m`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[m[2].toLowerCase()];
  const n = Math.floor(parseFloat(m[1]) * mult);
  if (n <= 0) throw new Error('size must be positive');
  if (!Number.isSafeInteger(n)) throw new Error(`size "${v}" is too large`);
  return n;
}

const DURATION_UNITS = { ns: 1e-6, us: 1e-3, '\u00b5s': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };

// parseDuration reads a duration into milliseconds: written as Go writes
// them (30s, 1m30s, 1.5s, 500ms), or an integer of nanoseconds
// (5000000000), the form Baetyl's own runtimes read. A bare number is
// nanoseconds, not seconds.
function parseDuration(v) {
  const s = String(v).trim();
  if (/^\d+$/.test(s)) return Number(s) / 1e6;
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    part.lastIndex = pos;
    const m = part.exec(s);
    if (!m) break;
    total += parseFloat(m[1]) * DURATION_UNITS[m[2]];
    pos = part.lastIndex;
  }
  if (s === '' || pos !== s.length) throw new Error(`duration "${v}": want a number with a unit such as 30s or 500ms, or an integer of nanoseconds`);
  return total;
}

// Leaves of the schema: each turns a scalar's value into the setting, or
// throws. A plain object is a mapping; an array holds its items' schema.
const string = (v) => (v === null ? '' : String(v));
const count = (v) => {
  if (!Number.isInteger(v) || v < 0) throw new Error(`want a whole number >= 0, got ${JSON.stringify(v)}`);
  return v;
};
const positive = (v) => {
  if (!Number.isInteger(v) || v < 1) throw new Error(`want a whole number >= 1, got ${JSON.stringify(v)}`);
  return v;
};
const oneOf = (...allowed) => (v) => {
  const s = String(v).toLowerCase();
  if (!allowed.includes(s)) throw new Error(`"${v}": want ${allowed.join(', ')}`);
  return s;
};

const SCHEMA = {
  name: string,
  server: {
    address: string,
    timeout: parseDuration,
    message: { length: { max: parseSize } },
    concurrent: { max: count },
    workers: { max: count },
    ca: string,
    key: string,
    cert: string,
  },
  functions: [{ name: string, handler: string, codedir: string }],
  // Baetyl's logger keys. age.max (days), size.max (MiB) and backup.max are
  // its rotation settings: accepted and checked so that a configuration
  // written for Baetyl works unchanged, but this runtime does not rotate
  // its log.
  logger: {
    path: string,
    level: oneOf('debug', 'info', 'warn', 'error'),
    format: oneOf('text', 'json'),
    age: { max: positive },
    size: { max: positive },
    backup: { max: positive },
  },
};

// parse reads configuration text; file names it in errors.
function parse(text, file = '<config>') {
  const lines = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  const fail = (line, msg) => { throw new Error(line ? `${file}:${line}: ${msg}` : `${file}: ${msg}`); };
  if (doc.errors.length) {
    const e = doc.errors[0];
    fail(e.linePos ? e.linePos[0].line : 0, e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, ''));
  }
  const lineOf = (node) => (node && node.range ? lines.linePos(node.range[0]).line : 0);
  const kind = (node) => (YAML.isMap(node) ? 'a mapping' : YAML.isSeq(node) ? 'a list' : 'a value');

  // walk converts node by schema into plain objects, arrays and values.
  const walk = (node, schema, where) => {
    if (YAML.isAlias(node)) node = node.resolve(doc);
    const name = where || 'the top level';
    const isNull = node == null || (YAML.isScalar(node) && node.value === null);
    if (Array.isArray(schema)) {
      if (isNull) return [];
      if (!YAML.isSeq(node)) fail(lineOf(node), `${name}: want a list, got ${kind(node)}`);
      return node.items.map((item, i) => walk(item, schema[0], `${name}[${i}]`));
    }
    if (typeof schema === 'object') {
      if (isNull) return { line: lineOf(node) };
      if (!YAML.isMap(node)) fail(lineOf(node), `${name}: want a mapping, got ${kind(node)}`);
      const out = { line: lineOf(node) };
      for (const pair of node.items) {
        const key = YAML.isScalar(pair.key) ? String(pair.key.value) : '';
        if (!Object.prototype.hasOwnProperty.call(schema, key)) fail(lineOf(pair.key), `unknown key "${key}" in ${name}`);
        out[key] = walk(pair.value, schema[key], where ? `${where}.${key}` : key);
      }
      return out;
    }
    if (isNull) return schema === string ? '' : undefined;
    if (!YAML.isScalar(node)) fail(lineOf(node), `${name}: want a value, got ${kind(node)}`);
    try {
      return schema(node.value);
    } catch (err) {
      return fail(lineOf(node), `${name}: ${err.message}`);
    }
  };

  const raw = doc.contents ? walk(doc.contents, SCHEMA, '') : { line: 0 };
  const server = raw.server || {};
  const logger = raw.logger || {};
  const cfg = {
    name: raw.name || '',
    server: {
      address: server.address || '',
      timeout: server.timeout !== undefined ? server.timeout : 10000,
      maxMessageSize: (server.message && server.message.length && server.message.length.max) || 4 * 1024 * 1024,
      ca: server.ca || '', key: server.key || '', cert: server.cert || '',
    },
    functions: [],
    logger: {
      path: logger.path || '',
      level: logger.level || 'info',
      format: logger.format || 'text',
      ageMax: logger.age && logger.age.max, sizeMax: logger.size && logger.size.max, backupMax: logger.backup && logger.backup.max,
    },
  };
  const seen = new Set();
  (raw.functions || []).forEach((f, i) => {
    if (!f.name) fail(f.line, `functions[${i}]: name is empty`);
    if (seen.has(f.name)) fail(f.line, `function "${f.name}" is configured twice`);
    if (!/^.+\.[A-Za-z_$][\w$]*$/.test(f.handler || '')) fail(f.line, `function "${f.name}": handler "${f.handler || ''}": want file.function, e.g. index.handler`);
    seen.add(f.name);
    cfg.functions.push({ name: f.name, handler: f.handler, codedir: f.codedir || '.' });
  });
  if (Boolean(cfg.server.key) !== Boolean(cfg.server.cert)) fail(server.line, 'server: TLS needs both key and cert');
  if (cfg.server.ca && !cfg.server.cert) fail(server.line, 'server: ca (mutual TLS) needs key and cert too');
  return cfg;
}

// load reads and parses the configuration file at file.
function load(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`read config ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
  return parse(text, file);
}

module.exports = { BAETYL_PATH, OPENEDGE_PATH, BAETYL_ENV, firstEnv, defaultPath, load, parse, parseSize, parseDuration };
