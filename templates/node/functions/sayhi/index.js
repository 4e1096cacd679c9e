'use strict';
// An example function: greets whoever the event names.
// event: the payload, decoded from JSON when it is JSON (else a Buffer; {}
// when empty). context: messageQOS, messageTopic, messageTimestamp,
// functionName, functionInvokeID, invokeid, and signal (an AbortSignal).
exports.handler = (event, context, callback) => {
  const who = event && typeof event === 'object' && !Buffer.isBuffer(event) && event.name ? event.name : 'world';
  callback(null, { say: `hi ${who}`, topic: context.messageTopic });
};
