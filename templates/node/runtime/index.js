'use strict';
// The runtime: serves openedge.Function/Call (and baetyl.Function/Call) with
// @grpc/grpc-js, running the functions configured in etc/openedge/service.yml.
const path = require('node:path');
const fs = require('node:fs');
const { isUtf8 } = require('node:buffer');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const config = require('./config');

const ADDRESS_ENV = ['BAETYL_SERVICE_INSTANCE_ADDRESS', 'OPENEDGE_SERVICE_INSTANCE_ADDRESS', 'OPENEDGE_SERVICE_ADDRESS'];
const NAME_ENV = ['BAETYL_SERVICE_INSTANCE_NAME', 'OPENEDGE_SERVICE_INSTANCE_NAME', 'OPENEDGE_SERVICE_NAME'];

function firstEnv(names) {
  for (const n of names) if (process.env[n] && process.env[n].trim()) return process.env[n].trim();
  return '';
}

function log(level, msg) {
  process.stderr.write(`${new Date().toISOString()} ${level} ${msg}\n`);
}

// loadFunction requires "file.function" from codedir.
function loadFunction(f) {
  const dot = f.handler.lastIndexOf('.');
  if (dot <= 0) throw new Error(`function "${f.name}": handler "${f.handler}" must be file.function`);
  const file = path.resolve(f.codedir, f.handler.slice(0, dot));
  const mod = require(file);
  const fn = mod[f.handler.slice(dot + 1)];
  if (typeof fn !== 'function') throw new Error(`function "${f.name}": ${file} exports no function "${f.handler.slice(dot + 1)}"`);
  return fn;
}

// decode hands JSON payloads to functions as values and anything else as a Buffer.
function decode(payload) {
  if (payload.length > 0 && isUtf8(payload)) {
    try { return JSON.parse(payload.toString('utf8')); } catch (_) { /* not JSON */ }
  }
  return payload;
}

// encode turns a function's result into the response payload.
function encode(result) {
  if (result === undefined || result === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(result)) return result;
  if (result instanceof Uint8Array) return Buffer.from(result);
  return Buffer.from(JSON.stringify(result));
}

// invoke runs fn(event, context, callback), which may also return a value
// or a Promise, and settles once.
function invoke(fn, event, context) {
  return new Promise((resolve, reject) => {
    let done = false;
    const callback = (err, result) => {
      if (done) return;
      done = true;
      if (err) reject(err instanceof Error ? err : new Error(String(err))); else resolve(result);
    };
    try {
      const ret = fn(event, context, callback);
      if (ret && typeof ret.then === 'function') ret.then((v) => callback(null, v), (e) => callback(e || new Error('rejected')));
      else if (fn.length < 3) callback(null, ret);
    } catch (err) {
      callback(err);
    }
  });
}

function makeCall(functions) {
  return (call, cb) => {
    const req = call.request;
    const fn = functions.get(req.FunctionName);
    if (!fn) {
      cb({ code: grpc.status.NOT_FOUND, details: `function "${req.FunctionName}" is not configured` });
      return;
    }
    const controller = new AbortController();
    call.on('cancelled', () => controller.abort());
    const context = {
      messageQOS: req.QOS,
      messageTopic: req.Topic,
      functionName: req.FunctionName,
      functionInvokeID: req.FunctionInvokeID,
      invokeid: req.FunctionInvokeID,
      signal: controller.signal,
    };
    invoke(fn, decode(req.Payload), context).then(
      (result) => { req.Payload = encode(result); cb(null, req); },
      (err) => cb({ code: grpc.status.UNKNOWN, details: String(err && err.message ? err.message : err) }),
    );
  };
}

function parseArgs(argv) {
  let file = 'etc/openedge/service.yml';
  let explicit = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-c' || argv[i] === '--config') { file = argv[++i]; explicit = true; }
    else if (argv[i].startsWith('--config=')) { file = argv[i].slice(9); explicit = true; }
    else if (argv[i] === '-h' || argv[i] === '--help') {
      process.stdout.write('usage: runtime [-c etc/openedge/service.yml]\n');
      process.exit(0);
    } else throw new Error(`unknown argument "${argv[i]}" (usage: runtime [-c FILE])`);
  }
  if (!file) throw new Error('-c needs a file');
  return { file, explicit };
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const cfg = config.load(args.file, args.explicit);
  let address = firstEnv(ADDRESS_ENV) || cfg.server.address;
  if (!address) throw new Error(`no address to listen on: set ${ADDRESS_ENV.join(', ')} or server.address`);
  address = address.replace(/^(grpc|grpcs|tcp):\/\//, '');
  const name = firstEnv(NAME_ENV) || cfg.name || 'runtime';

  const functions = new Map();
  for (const f of cfg.functions) functions.set(f.name, loadFunction(f));

  const opts = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };
  const server = new grpc.Server({
    'grpc.max_receive_message_length': cfg.server.maxMessageSize,
    'grpc.max_send_message_length': cfg.server.maxMessageSize,
  });
  const handler = { Call: makeCall(functions) };
  for (const [file, pkg] of [['function.proto', 'openedge'], ['baetyl/function.proto', 'baetyl']]) {
    const def = protoLoader.loadSync(path.join(__dirname, '..', 'proto', file), opts);
    server.addService(grpc.loadPackageDefinition(def)[pkg].Function.service, handler);
  }

  let creds = grpc.ServerCredentials.createInsecure();
  if (cfg.server.cert) {
    const ca = cfg.server.ca ? fs.readFileSync(cfg.server.ca) : null;
    creds = grpc.ServerCredentials.createSsl(ca, [{ private_key: fs.readFileSync(cfg.server.key), cert_chain: fs.readFileSync(cfg.server.cert) }], Boolean(ca));
  }

  server.bindAsync(address, creds, (err) => {
    if (err) {
      log('ERROR', `listen on ${address}: ${err.message}`);
      process.exit(1);
    }
    log('INFO', `runtime ${name} serving on ${address} (functions: ${[...functions.keys()].join(', ')})`);
  });

  let stopping = false;
  const stop = (sig) => {
    if (stopping) return;
    stopping = true;
    log('INFO', `${sig}: stopping, calls in flight get ${cfg.server.timeout} ms`);
    const force = setTimeout(() => {
      log('WARN', 'grace period over: closing the calls still in flight');
      server.forceShutdown();
      process.exit(0);
    }, cfg.server.timeout);
    force.unref();
    server.tryShutdown(() => {
      log('INFO', 'runtime stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

try {
  main();
} catch (err) {
  log('ERROR', err.message);
  process.exit(2);
}
