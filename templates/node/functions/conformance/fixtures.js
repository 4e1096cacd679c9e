'use strict';
// The conformance fixtures: the functions `oe-rt conform` calls to check the
// runtime. Keep them configured (etc/openedge/service.yml) so that the
// runtime can be checked at any time.

// echo returns its event: JSON as JSON, bytes as they are; an empty payload,
// which functions get as {} (as under Baetyl), comes back as {}.
exports.echo = (event, context, callback) => callback(null, event);

exports.context = (event, context, callback) => callback(null, {
  messageQOS: context.messageQOS,
  messageTopic: context.messageTopic,
  functionName: context.functionName,
  functionInvokeID: context.functionInvokeID,
});

exports.none = (event, context, callback) => callback(null);

exports.fail = (event, context, callback) => callback(new Error('conformance failure'));

// sleep waits {"ms": N} milliseconds, or until the call is cancelled.
exports.sleep = (event, context, callback) => {
  if (!event || typeof event.ms !== 'number' || event.ms < 0) {
    callback(new Error('sleep: the payload must be {"ms": N}'));
    return;
  }
  const timer = setTimeout(() => callback(null, event), event.ms);
  context.signal.addEventListener('abort', () => {
    clearTimeout(timer);
    callback(new Error('cancelled'));
  }, { once: true });
};
