'use strict';
// The runtime: serves openedge.Function/Call (and baetyl.Function/Call) with
// @grpc/grpc-js, running the configured functions exactly as Baetyl's own
// Node runtime runs them, so that a function written for Baetyl runs here
// unchanged.
const path = require('node:path');
const fs = require('node:fs');
const { isUtf8 } = require('node:buffer');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const config = require('./config');
const json = require('./json');

const ADDRESS_ENV = ['BAETYL_SERVICE_INSTANCE_ADDRESS', 'OPENEDGE_SERVICE_INSTANCE_ADDRESS', 'OPENEDGE_SERVICE_ADDRESS'];
const NAME_ENV = ['BAETYL_SERVICE_INSTANCE_NAME', 'OPENEDGE_SERVICE_INSTANCE_NAME', 'OPENEDGE_SERVICE_NAME'];
const LEVELS = { debug: 0, info: 1, warn: 2, error: 3 };
// The oldest Node the runtime stops gracefully on (package.json's engines).
// On SIGTERM tryShutdown closes each HTTP/2 session gracefully (GOAWAY, then
// the end of its calls in flight); Node 18's http2 then resets a call that
// ends after the close, and the answer the function gave never reaches the
// caller. Node 20 sends it (nodejs/node#42713, fixed by nodejs/node#45153).
const MIN_NODE = 20;

// The log: standard error until the configuration says otherwise (setupLog).
const logState = { level: LEVELS.info, json: false, file: null, name: 'runtime' };

function log(level, msg) {
  if (LEVELS[level.toLowerCase()] < logState.level) return;
  const time = new Date().toISOString();
  const line = logState.json
    ? JSON.stringify({ time, level, name: logState.name, msg })
    : `${time} ${level} ${msg}`;
  if (logState.file !== null) fs.writeSync(logState.file, `${line}\n`);
  else process.stderr.write(`${line}\n`);
}

// setupLog sends the log to logger.path (creating its directory) or stderr.
// A file it cannot open is not fatal: Baetyl's example configurations name
// var/log/baetyl/service.log, which a container's user may be unable to
// create, and a runtime that exits for it never serves (its master restarts
// it in a loop). It says so on stderr, and the log goes there.
function setupLog(cfg, name) {
  logState.level = LEVELS[cfg.logger.level];
  logState.json = cfg.logger.format === 'json';
  logState.name = name;
  if (cfg.logger.path) {
    try {
      fs.mkdirSync(path.dirname(cfg.logger.path), { recursive: true });
      logState.file = fs.openSync(cfg.logger.path, 'a');
    } catch (err) {
      log('error', `logger.path ${cfg.logger.path}: ${err.message}; logging to stderr instead`);
    }
  }
}

// ConfigError is an error at start that is the configuration's fault: the
// runtime exits 2 for it (1 for other errors at start).
class ConfigError extends Error {}

// fail reports an error at start and exits: always on stderr, so that whoever
// started the runtime sees it, and in the log file too when there is one.
function fail(err) {
  const code = err instanceof ConfigError ? 2 : 1;
  process.stderr.write(`runtime: ${err.message}\n`);
  if (logState.file !== null) log('ERROR', err.message);
  process.exit(code);
}

// loadFunction requires "file.function" from codedir.
function loadFunction(f) {
  const dot = f.handler.lastIndexOf('.');
  const file = path.resolve(f.codedir, f.handler.slice(0, dot));
  let mod;
  try {
    mod = require(file);
  } catch (err) {
    throw new ConfigError(`function "${f.name}": require ${file}: ${err.message.split('\n')[0]}`);
  }
  const fn = mod[f.handler.slice(dot + 1)];
  if (typeof fn !== 'function') throw new ConfigError(`function "${f.name}": ${file} exports no function "${f.handler.slice(dot + 1)}"`);
  return fn;
}

// decode gives a function the payload of a call of pkg's Function: the
// value of a JSON payload (integers beyond 2^53 as BigInts, see json.js), a
// Buffer of any other. An empty one is a new {} under Baetyl, as Baetyl's
// runtimes give (returned, the function manager publishes {}), and the
// empty Buffer under OpenEdge (returned, the manager publishes nothing), as
// OpenEdge 0.1.2's runtimes give nothing.
function decode(payload, pkg = 'baetyl') {
  if (payload.length === 0) return pkg === 'baetyl' ? {} : payload;
  if (isUtf8(payload)) {
    try { return json.parse(payload.toString('utf8')); } catch (_) { /* not JSON */ }
  }
  return payload;
}

// encode turns a function's result into the response payload: nothing
// (undefined, null or "") is empty, bytes go as they are, anything else as
// its JSON (a BigInt as its digits).
function encode(result) {
  if (result === undefined || result === null || result === '') return Buffer.alloc(0);
  if (Buffer.isBuffer(result)) return result;
  if (result instanceof Uint8Array) return Buffer.from(result);
  return Buffer.from(json.stringify(result));
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

// makeContext is the context a function gets: Baetyl's keys, and signal (not
// enumerable, so that the object's keys are Baetyl's own).
function makeContext(req, signal) {
  const context = {
    messageQOS: req.QOS,
    messageTopic: req.Topic,
    messageTimestamp: req.Timestamp || 0, // OpenEdge's message has none
    functionName: req.FunctionName,
    functionInvokeID: req.FunctionInvokeID,
    invokeid: req.FunctionInvokeID,
  };
  Object.defineProperty(context, 'signal', { value: signal, enumerable: false });
  return context;
}

// Around a call that carries megabytes, collect the garbage: before it, so
// that the buffers of the last large call (sent by now) are freed before
// this one's are added, and after it. A message's buffers live outside
// V8's heap, and V8 frees them only when it collects, which it otherwise
// puts off until some 64 MiB of them have piled up: more than the 50 MiB a
// container may give an instance, which one 4 MiB call after another would
// exceed. (global.gc needs node --expose-gc, as bin/runtime starts it;
// without it nothing is done.)
const LARGE = 1 << 20;
const collect = typeof global.gc === 'function' ? () => global.gc() : () => {};

function makeCall(functions, pkg) {
  return (call, cb) => {
    const req = call.request;
    const fn = functions.get(req.FunctionName);
    if (!fn) {
      cb({ code: grpc.status.NOT_FOUND, details: `function "${req.FunctionName}" is not configured` });
      return;
    }
    if (req.Payload.length >= LARGE) collect();
    const controller = new AbortController();
    call.on('cancelled', () => controller.abort());
    invoke(fn, decode(req.Payload, pkg), makeContext(req, controller.signal)).then(
      (result) => {
        let payload;
        try {
          payload = encode(result);
        } catch (err) {
          cb({ code: grpc.status.UNKNOWN, details: `function "${req.FunctionName}": its result is not JSON: ${err.message}` });
          return;
        }
        const large = req.Payload.length + payload.length >= LARGE;
        req.Payload = payload;
        cb(null, req);
        if (large) setImmediate(collect);
      },
      (err) => {
        log('WARN', `function ${req.FunctionName} failed: ${err && err.message ? err.message : err}`);
        cb({ code: grpc.status.UNKNOWN, details: String(err && err.message ? err.message : err) });
      },
    );
  };
}

const USAGE = `usage: runtime [-c FILE]
  -c, --config FILE  configuration (default ${config.BAETYL_PATH} under a Baetyl master, else ${config.OPENEDGE_PATH})\n`;

function parseArgs(argv) {
  let file = null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-c' || argv[i] === '--config') {
      if (i + 1 >= argv.length) throw new ConfigError(`${argv[i]} needs a file`);
      file = argv[++i];
    } else if (argv[i].startsWith('--config=')) file = argv[i].slice(9);
    else if (argv[i] === '-h' || argv[i] === '--help') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new ConfigError(`unknown argument "${argv[i]}" (usage: runtime [-c FILE])`);
  }
  if (file === '') throw new ConfigError('-c needs a file');
  return file;
}

function main() {
  let file = parseArgs(process.argv.slice(2));
  let why = '';
  if (file === null) ({ file, why } = config.defaultPath());
  let cfg;
  try {
    cfg = config.load(file);
  } catch (err) {
    const hint = why ? `\nruntime: ${file} is the default because ${why}; give another file with -c` : '';
    throw new ConfigError(err.message + hint);
  }
  const name = config.firstEnv(NAME_ENV)[0] || cfg.name || 'runtime';
  setupLog(cfg, name);
  if (Number(process.versions.node.split('.')[0]) < MIN_NODE) {
    log('WARN', `Node ${process.version} is older than ${MIN_NODE} (package.json's engines): its http2 loses the answer of a call still in flight when the runtime stops at SIGTERM (nodejs/node#42713); use Node ${MIN_NODE} or later`);
  }
  let [address, source] = config.firstEnv(ADDRESS_ENV);
  if (address) source = `$${source}`;
  else [address, source] = [cfg.server.address, 'server.address'];
  if (!address) throw new ConfigError(`no address to listen on: set ${ADDRESS_ENV.map((n) => `$${n}`).join(', ')}, or server.address in ${file}`);
  address = address.replace(/^(grpc|grpcs|tcp):\/\//, '');

  const functions = new Map();
  for (const f of cfg.functions) functions.set(f.name, loadFunction(f));

  const opts = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };
  const server = new grpc.Server({
    'grpc.max_receive_message_length': cfg.server.maxMessageSize,
    'grpc.max_send_message_length': cfg.server.maxMessageSize,
  });
  for (const [protoFile, pkg] of [['function.proto', 'openedge'], ['baetyl/function.proto', 'baetyl']]) {
    const def = protoLoader.loadSync(path.join(__dirname, '..', 'proto', protoFile), opts);
    server.addService(grpc.loadPackageDefinition(def)[pkg].Function.service, { Call: makeCall(functions, pkg) });
  }

  let creds = grpc.ServerCredentials.createInsecure();
  if (cfg.server.cert) {
    const read = (key) => {
      try {
        return fs.readFileSync(cfg.server[key]);
      } catch (err) {
        throw new Error(`read server.${key} ${cfg.server[key]}: ${err.message}`);
      }
    };
    const ca = cfg.server.ca ? read('ca') : null;
    creds = grpc.ServerCredentials.createSsl(ca, [{ private_key: read('key'), cert_chain: read('cert') }], Boolean(ca));
  }

  server.bindAsync(address, creds, (err) => {
    if (err) fail(new Error(`listen on ${address} (from ${source}): ${err.message}`));
    log('INFO', `runtime ${name} serving on ${address} (address from ${source}; functions: ${[...functions.keys()].join(', ')})`);
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
  fail(err);
}
