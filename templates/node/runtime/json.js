'use strict';
// JSON that keeps integers exact. JSON.parse rounds every number to the
// nearest double, so 9007199254740993 (2^53+1) would reach a function, and
// come back, as 9007199254740992; Baetyl's Node runtime does that, its
// Python runtime does not. Here an integer beyond Number.MAX_SAFE_INTEGER
// becomes a BigInt, and a BigInt is written back as its digits.

// parse is JSON.parse, but integers beyond 2^53 are BigInts. It throws a
// SyntaxError on what is not JSON, as JSON.parse does.
function parse(text) {
  const value = JSON.parse(text); // validates; most payloads end here
  // An integer beyond 2^53 has at least 16 digits: each run of them that
  // is an integer token (not in a string, not a fraction's or an
  // exponent's digits) and beyond 2^53 becomes a marked string, which
  // the reviver turns into a BigInt.
  const digits = /-?\d{16,}/g;
  let parts = null;
  let last = 0;
  let at = 0;
  let inString = false;
  for (let m = digits.exec(text); m !== null; m = digits.exec(text)) {
    for (; at < m.index; at++) { // where strings begin and end, up to the match
      const c = text.charCodeAt(at);
      if (!inString) inString = c === 0x22;
      else if (c === 0x5c) at++;
      else if (c === 0x22) inString = false;
    }
    const tok = m[0];
    const end = m.index + tok.length;
    if (inString || /[\d.eE+-]/.test(text[m.index - 1] || ' ') || /[.eE]/.test(text[end] || ' ')) continue;
    const n = BigInt(tok);
    if (n <= MAX_SAFE && n >= -MAX_SAFE) continue;
    (parts = parts || []).push(text.slice(last, m.index), `"${MARK_JSON}${tok}"`);
    last = end;
  }
  if (parts === null) return value;
  parts.push(text.slice(last));
  return JSON.parse(parts.join(''), (key, v) => (typeof v === 'string' && v.startsWith(MARK) ? BigInt(v.slice(MARK.length)) : v));
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

// The mark a BigInt is written as before its digits replace it: a NUL and
// a per-process nonce, so that no string a function returns is taken for
// one.
const MARK = `\u0000oe-rt-bigint-${Math.random().toString(36).slice(2)}:`;
const MARK_JSON = JSON.stringify(MARK).slice(1, -1);
const MARKED = new RegExp(`"${JSON.stringify(MARK).slice(1, -1).replace(/\\/g, '\\\\')}(-?\\d+)"`, 'g');

// stringify is JSON.stringify, but a BigInt is written as its digits
// (JSON.stringify throws on one).
function stringify(value) {
  let big = false;
  const out = JSON.stringify(value, (key, v) => {
    if (typeof v !== 'bigint') return v;
    big = true;
    return MARK + v.toString();
  });
  return big ? out.replace(MARKED, '$1') : out;
}

module.exports = { parse, stringify };
