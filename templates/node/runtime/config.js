'use strict';
// Reads etc/openedge/service.yml: the keys of the OpenEdge runtime
// convention. Unknown keys are errors, so that a typo is never ignored.
const fs = require('node:fs');
const YAML = require('yaml');

const KNOWN = {
  name: true,
  server: {
    address: true, timeout: true, ca: true, key: true, cert: true,
    message: { length: { max: true } },
    concurrent: { max: true },
    workers: { max: true },
  },
  functions: [{ name: true, handler: true, codedir: true }],
  logger: { path: true, level: true, format: true },
};

function checkKeys(value, known, where, file) {
  if (Array.isArray(known)) {
    if (!Array.isArray(value)) throw new Error(`${file}: ${where} must be a list`);
    value.forEach((v, i) => checkKeys(v, known[0], `${where}[${i}]`, file));
    return;
  }
  if (known === true || value === null || value === undefined) return;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${file}: ${where || 'the top level'} must be a mapping`);
  }
  for (const k of Object.keys(value)) {
    if (!(k in known)) throw new Error(`${file}: unknown key "${k}" in ${where || 'the top level'}`);
    checkKeys(value[k], known[k], where ? `${where}.${k}` : k, file);
  }
}

// parseSize reads 4194304, 4m, 512k, 1MiB (binary units).
function parseSize(v) {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(i?b)?\s*$/i.exec(String(v));
  if (!m) throw new Error(`size "${v}": want bytes or a number with a unit such as 4m`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
  return Math.floor(parseFloat(m[1]) * mult);
}

// parseDuration reads 30s, 500ms, 1m.
function parseDuration(v) {
  const m = /^\s*(\d+(?:\.\d+)?)(ms|s|m|h)\s*$/.exec(String(v));
  if (!m) throw new Error(`duration "${v}": want a number with a unit such as 30s`);
  return parseFloat(m[1]) * { ms: 1, s: 1000, m: 60000, h: 3600000 }[m[2]];
}

function load(file, mustExist) {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err.code === 'ENOENT' && !mustExist) text = '';
    else throw new Error(`read config ${file}: ${err.message}`);
  }
  const doc = YAML.parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const line = e.linePos ? e.linePos[0].line : '?';
    throw new Error(`${file}:${line}: ${e.message.split('\n')[0]}`);
  }
  const raw = doc.toJS() || {};
  checkKeys(raw, KNOWN, '', file);
  const server = raw.server || {};
  const cfg = {
    name: raw.name || '',
    server: {
      address: server.address || '',
      timeout: server.timeout !== undefined ? parseDuration(server.timeout) : 10000,
      maxMessageSize: server.message && server.message.length && server.message.length.max !== undefined
        ? parseSize(server.message.length.max) : 4 * 1024 * 1024,
      ca: server.ca || '', key: server.key || '', cert: server.cert || '',
    },
    functions: (raw.functions || []).map((f, i) => {
      if (!f || !f.name) throw new Error(`${file}: functions[${i}]: name is empty`);
      if (!f.handler) throw new Error(`${file}: function "${f.name}": handler is empty`);
      return { name: String(f.name), handler: String(f.handler), codedir: f.codedir ? String(f.codedir) : '.' };
    }),
    logger: { level: (raw.logger && raw.logger.level) || 'info' },
  };
  if (Boolean(cfg.server.key) !== Boolean(cfg.server.cert)) throw new Error(`${file}: server: TLS needs both key and cert`);
  return cfg;
}

module.exports = { load, parseSize, parseDuration };
