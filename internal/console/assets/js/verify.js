// Verifying an audit export in the page, as `cleanroom audit verify` does
// (audit.ReadExport, then audit.Verify): the auditor need not trust the
// server's word that its log is whole. The rules, and the error messages,
// follow audit/audit.go and audit/sign.go; a Go test (verify_test.go) runs
// both on the same exports, tampered in many ways, and wants the same
// answers.
//
// It works on the export's bytes: an entry's details are hashed as the
// exact bytes of the line, which JSON.parse would lose, so a small JSON
// scanner finds each value's span. SHA-256 is computed here, not with
// crypto.subtle.digest: tens of thousands of small hashes run faster
// synchronously, and the chain can be checked even where WebCrypto is
// missing (pages not served from a secure origin). The head's Ed25519
// signature needs WebCrypto; without it the result says the signature
// was not checked, and the log is not called verified.
(function () {
  'use strict';
  var CR = (window.CR = window.CR || {});

  // ---- SHA-256 (FIPS 180-4) ----

  var K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);
  var W = new Int32Array(64);
  var HEX = [];
  for (var x = 0; x < 256; x++) HEX.push((x < 16 ? '0' : '') + x.toString(16));

  // buf is reused for each message (and its padding): tens of thousands
  // of small hashes would otherwise be as many allocations.
  var buf = new Uint8Array(4096), view = new DataView(buf.buffer);
  function room(n) {
    if (buf.length < n) {
      var old = buf;
      buf = new Uint8Array(Math.max(n, 2 * buf.length));
      buf.set(old);
      view = new DataView(buf.buffer);
    }
  }

  // sha256hex hashes bytes, in hex.
  function sha256hex(m) {
    room(m.length + 72);
    buf.set(m);
    return digest(m.length);
  }

  // digest hashes buf[0:l] (it pads buf in place).
  function digest(l) {
    var n = ((l + 9 + 63) >> 6) << 6;
    room(n);
    var p = buf, dv = view;
    p[l] = 0x80;
    p.fill(0, l + 1, n);
    dv.setUint32(n - 8, Math.floor(l / 0x20000000));
    dv.setUint32(n - 4, (l * 8) >>> 0);
    var h0 = 0x6a09e667, h1 = 0xbb67ae85 | 0, h2 = 0x3c6ef372, h3 = 0xa54ff53a | 0,
      h4 = 0x510e527f, h5 = 0x9b05688c | 0, h6 = 0x1f83d9ab, h7 = 0x5be0cd19;
    for (var off = 0; off < n; off += 64) {
      var i, x, y;
      for (i = 0; i < 16; i++) W[i] = dv.getInt32(off + 4 * i);
      for (i = 16; i < 64; i++) {
        x = W[i - 15];
        y = W[i - 2];
        W[i] = (W[i - 16] + ((x >>> 7 | x << 25) ^ (x >>> 18 | x << 14) ^ (x >>> 3)) + W[i - 7] +
          ((y >>> 17 | y << 15) ^ (y >>> 19 | y << 13) ^ (y >>> 10))) | 0;
      }
      var a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7;
      for (i = 0; i < 64; i++) {
        var t1 = (h + ((e >>> 6 | e << 26) ^ (e >>> 11 | e << 21) ^ (e >>> 25 | e << 7)) +
          ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
        var t2 = (((a >>> 2 | a << 30) ^ (a >>> 13 | a << 19) ^ (a >>> 22 | a << 10)) +
          ((a & b) ^ (a & c) ^ (b & c))) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h0 = (h0 + a) | 0; h1 = (h1 + b) | 0; h2 = (h2 + c) | 0; h3 = (h3 + d) | 0;
      h4 = (h4 + e) | 0; h5 = (h5 + f) | 0; h6 = (h6 + g) | 0; h7 = (h7 + h) | 0;
    }
    return hexWord(h0) + hexWord(h1) + hexWord(h2) + hexWord(h3) + hexWord(h4) + hexWord(h5) + hexWord(h6) + hexWord(h7);
  }
  function hexWord(w) { return HEX[(w >>> 24) & 255] + HEX[(w >>> 16) & 255] + HEX[(w >>> 8) & 255] + HEX[w & 255]; }

  var encoder = new TextEncoder();

  // lengthPrefixed is audit.lengthPrefixed: SHA-256 over each field (a
  // string, as UTF-8, or bytes) as an 8-byte big-endian length and its
  // bytes.
  function lengthPrefixed(fields) {
    var o = 0;
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      // A string's UTF-8 is at most 3 bytes per UTF-16 unit.
      room(o + 8 + (typeof f === 'string' ? 3 * f.length : f.length) + 72);
      var n;
      if (typeof f === 'string') n = encoder.encodeInto(f, buf.subarray(o + 8)).written;
      else {
        buf.set(f, o + 8);
        n = f.length;
      }
      view.setUint32(o, Math.floor(n / 0x100000000));
      view.setUint32(o + 4, n >>> 0);
      o += 8 + n;
    }
    return digest(o);
  }

  // ---- JSON: a scanner that keeps each value's byte span ----

  function JSONError(msg) { this.message = msg; }

  // quoteChar is how Go's encoding/json names a character in a syntax error.
  function quoteChar(c) {
    if (c === 0x27) return "'\\''";
    if (c === 0x22) return "'\"'";
    if (c >= 0x20 && c < 0x7f) return "'" + String.fromCharCode(c) + "'";
    return "'\\x" + c.toString(16).padStart(2, '0') + "'";
  }

  // Scanner reads values from b. A node is {t: kind, s: start, e: end}
  // (the value's bytes are b[s:e]); objects down to depth keep, as
  // members, [key, node] pairs in order (duplicates kept, as Go sees them).
  function Scanner(b) { this.b = b; this.i = 0; }
  Scanner.prototype.ws = function () {
    var b = this.b, i = this.i;
    while (i < b.length && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09)) i++;
    this.i = i;
    return i < b.length ? b[i] : -1;
  };
  Scanner.prototype.fail = function (what) {
    if (this.i >= this.b.length) throw new JSONError('unexpected EOF');
    throw new JSONError('invalid character ' + quoteChar(this.b[this.i]) + ' ' + what);
  };
  Scanner.prototype.value = function (keep) {
    var c = this.ws(), s = this.i, b = this.b;
    if (c === 0x7b) return this.object(keep);
    if (c === 0x5b) {
      this.i++;
      if (this.ws() === 0x5d) { this.i++; return { t: 'array', s: s, e: this.i }; }
      for (;;) {
        this.value(-1);
        c = this.ws();
        if (c === 0x2c) { this.i++; continue; }
        if (c === 0x5d) { this.i++; return { t: 'array', s: s, e: this.i }; }
        this.fail('after array element');
      }
    }
    if (c === 0x22) { this.string(); return { t: 'string', s: s, e: this.i }; }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) { this.number(); return { t: 'number', s: s, e: this.i }; }
    var lits = { 0x74: 'true', 0x66: 'false', 0x6e: 'null' };
    if (lits[c]) {
      var lit = lits[c];
      for (var k = 1; k < lit.length; k++) {
        this.i = s + k;
        if (b[this.i] !== lit.charCodeAt(k)) this.fail('in literal ' + lit + " (expecting '" + lit[k] + "')");
      }
      this.i = s + lit.length;
      return { t: lit === 'null' ? 'null' : 'bool', s: s, e: this.i };
    }
    this.fail('looking for beginning of value');
  };
  Scanner.prototype.object = function (keep) {
    var s = this.i, members = keep >= 0 ? [] : null, c;
    this.i++;
    if (this.ws() === 0x7d) { this.i++; return { t: 'object', s: s, e: this.i, members: members }; }
    for (;;) {
      if (this.ws() !== 0x22) this.fail('looking for beginning of object key string');
      var ks = this.i;
      this.string();
      var ke = this.i;
      if (this.ws() !== 0x3a) this.fail('after object key');
      this.i++;
      var key = members ? decodeString(this.b, ks, ke) : null;
      // Below the top, only the head's members are read (details are
      // hashed as bytes, and parsed again only to check a commitment).
      var v = this.value(keep > 0 && fold(key) === 'head' ? keep - 1 : -1);
      if (members) members.push([key, v]);
      c = this.ws();
      if (c === 0x2c) { this.i++; continue; }
      if (c === 0x7d) { this.i++; return { t: 'object', s: s, e: this.i, members: members }; }
      this.fail('after object key:value pair');
    }
  };
  Scanner.prototype.string = function () {
    var b = this.b, i = this.i + 1, n = b.length;
    for (;;) {
      if (i >= n) { this.i = i; this.fail(''); }
      var c = b[i];
      if (c === 0x22) { this.i = i + 1; return; }
      if (c < 0x20) { this.i = i; this.fail('in string literal'); }
      if (c === 0x5c) {
        i++;
        if (i >= n) { this.i = i; this.fail(''); }
        c = b[i];
        if (c === 0x75) {
          for (var k = 1; k <= 4; k++) {
            if (i + k >= n) { this.i = i + k; this.fail(''); }
            if (!isHex(b[i + k])) { this.i = i + k; this.fail('in \\u hexadecimal character escape'); }
          }
          i += 4;
        } else if ('"\\/bfnrt'.indexOf(String.fromCharCode(c)) < 0) {
          this.i = i;
          this.fail('in string escape code');
        }
      }
      i++;
    }
  };
  Scanner.prototype.number = function () {
    var b = this.b, i = this.i, self = this;
    function digits(what) {
      if (!(b[i] >= 0x30 && b[i] <= 0x39)) { self.i = i; self.fail(what); }
      while (b[i] >= 0x30 && b[i] <= 0x39) i++;
    }
    if (b[i] === 0x2d) i++;
    if (b[i] === 0x30) i++;
    else digits('in numeric literal');
    if (b[i] === 0x2e) { i++; digits('after decimal point in numeric literal'); }
    if (b[i] === 0x65 || b[i] === 0x45) {
      i++;
      if (b[i] === 0x2b || b[i] === 0x2d) i++;
      digits('in exponent of numeric literal');
    }
    this.i = i;
  };
  function isHex(c) { return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66); }

  // decodeString decodes the JSON string b[s:e] as Go does: invalid UTF-8
  // and lone surrogates become U+FFFD, byte by byte.
  function decodeString(b, s, e) {
    var i, ascii = true;
    for (i = s + 1; i < e - 1; i++) if (b[i] >= 0x80 || b[i] === 0x5c) { ascii = false; break; }
    if (ascii) return latin1(b, s + 1, e - 1);
    var out = [];
    i = s + 1;
    var end = e - 1;
    while (i < end) {
      var c = b[i];
      if (c === 0x5c) {
        var x = b[i + 1];
        if (x === 0x75) {
          var r = hex4(b, i + 2);
          i += 6;
          if (r >= 0xd800 && r < 0xe000) {
            var r2 = b[i] === 0x5c && b[i + 1] === 0x75 ? hex4(b, i + 2) : -1;
            if (r < 0xdc00 && r2 >= 0xdc00 && r2 < 0xe000) {
              out.push(0x10000 + ((r - 0xd800) << 10) + (r2 - 0xdc00));
              i += 6;
            } else out.push(0xfffd);
          } else out.push(r);
        } else {
          out.push({ 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9 }[x] || x);
          i += 2;
        }
      } else if (c < 0x80) {
        out.push(c);
        i++;
      } else {
        var d = decodeRune(b, i, end);
        out.push(d[0]);
        i += d[1];
      }
    }
    var str = '';
    for (i = 0; i < out.length; i += 4096) str += String.fromCodePoint.apply(null, out.slice(i, i + 4096));
    return str;
  }
  function latin1(b, s, e) {
    var out = '';
    if (e - s < 64) {
      for (var k = s; k < e; k++) out += String.fromCharCode(b[k]);
      return out;
    }
    for (var i = s; i < e; i += 4096) out += String.fromCharCode.apply(null, b.subarray(i, Math.min(e, i + 4096)));
    return out;
  }
  function hex4(b, i) { return parseInt(String.fromCharCode(b[i], b[i + 1], b[i + 2], b[i + 3]), 16); }
  // decodeRune is Go's utf8.DecodeRune: [rune, size], (U+FFFD, 1) when invalid.
  function decodeRune(b, i, end) {
    var c = b[i], need, min, r;
    if (c >= 0xc2 && c <= 0xdf) { need = 1; r = c & 0x1f; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { need = 2; r = c & 0x0f; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { need = 3; r = c & 0x07; min = 0x10000; }
    else return [0xfffd, 1];
    if (i + need >= end + 1) return [0xfffd, 1];
    for (var k = 1; k <= need; k++) {
      var x = b[i + k];
      if ((x & 0xc0) !== 0x80) return [0xfffd, 1];
      r = (r << 6) | (x & 0x3f);
    }
    if (r < min || r > 0x10ffff || (r >= 0xd800 && r < 0xe000)) return [0xfffd, 1];
    return [r, need + 1];
  }

  // fold is the case folding encoding/json matches struct field names
  // with (bytes.EqualFold): ſ is s and the Kelvin sign is k.
  var folded = new Map();
  function fold(s) {
    var f = folded.get(s);
    if (f === undefined) {
      f = s.replace(/\u017f/g, 's').replace(/\u212a/g, 'k').toLowerCase();
      if (folded.size < 1000) folded.set(s, f);
    }
    return f;
  }

  var text = new TextDecoder();
  function raw(b, n) { return b.subarray(n.s, n.e); }
  function rawString(b, n) { return text.decode(raw(b, n)); }

  // Go type names, for type errors.
  var goKinds = { string: 'string', number: 'number', bool: 'bool', array: 'array', object: 'object' };

  // decodeStruct decodes obj's members into out by fields (Go name ->
  // kind), as json.Unmarshal does: names matched case-insensitively, the
  // last of duplicates winning, null leaving a field as it was (but
  // giving a raw field the bytes null), unknown names ignored.
  function decodeStruct(b, obj, fields, typeName, out) {
    var err = null;
    obj.members.forEach(function (m) {
      var name = fold(m[0]), n = m[1];
      if (!Object.prototype.hasOwnProperty.call(fields, name)) return;
      var kind = fields[name];
      if (kind === 'raw') { out[name] = raw(b, n); return; }
      if (n.t === 'null') return;
      var bad = function () {
        return 'json: cannot unmarshal ' + goKinds[n.t] + ' into Go struct field ' + typeName + '.' + name + ' of type ' +
          { int: 'int64', string: 'string', bool: 'bool', time: 'time.Time' }[kind];
      };
      if (kind === 'string') {
        if (n.t !== 'string') err = err || bad();
        else out[name] = decodeString(b, n.s, n.e);
      } else if (kind === 'bool') {
        if (n.t !== 'bool') err = err || bad();
        else out[name] = b[n.s] === 0x74;
      } else if (kind === 'int') {
        var s = rawString(b, n);
        if (n.t !== 'number' || !/^-?\d+$/.test(s) || BigInt(s) > 9223372036854775807n || BigInt(s) < -9223372036854775808n) {
          err = err || (n.t === 'number' ? 'json: cannot unmarshal number ' + s + ' into Go struct field ' + typeName + '.' + name + ' of type int64' : bad());
        } else out[name] = BigInt(s).toString();
      } else if (kind === 'time') {
        if (n.t !== 'string') err = err || 'Time.UnmarshalJSON: input is not a JSON string';
        else {
          var t = parseTime(rawString(b, { s: n.s + 1, e: n.e - 1 }));
          if (t === null) err = err || 'parsing time ' + rawString(b, n) + ' as "2006-01-02T15:04:05Z07:00": cannot parse';
          else out[name] = t;
        }
      }
    });
    return err;
  }

  var entryFields = {
    v: 'int', seq: 'int', at: 'time', actor: 'string', partner_id: 'string', collab_id: 'string', action: 'string',
    details: 'raw', prev_hash: 'string', hash: 'string', private: 'raw', content_hash: 'string', redacted: 'bool'
  };
  var headFields = { seq: 'int', hash: 'string', at: 'time', v2_from: 'int', signature: 'string' };
  var zeroTime = '0001-01-01T00:00:00Z';

  function newEntry() {
    return { v: '0', seq: '0', at: zeroTime, actor: '', partner_id: '', collab_id: '', action: '', details: null,
      prev_hash: '', hash: '', private: null, content_hash: '', redacted: false, carried: [] };
  }

  // parseTime reads an RFC 3339 time as Go's time.UnmarshalJSON does and
  // gives it as time.RFC3339Nano in UTC (what the hashes cover), or null.
  function parseTime(s) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|([+-])(\d{2}):(\d{2}))$/.exec(s);
    if (!m) return null;
    var y = +m[1], mo = +m[2], d = +m[3], h = +m[4], mi = +m[5], se = +m[6];
    var leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
    var days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
    if (mo < 1 || mo > 12 || d < 1 || d > days || h > 23 || mi > 59 || se > 59) return null;
    var off = 0;
    if (m[8] !== 'Z') {
      if (+m[10] > 23 || +m[11] > 59) return null;
      off = (+m[10] * 60 + +m[11]) * (m[9] === '-' ? -1 : 1);
    }
    var t = new Date(0);
    t.setUTCFullYear(y, mo - 1, d);
    t.setUTCHours(h, mi - off, se, 0);
    var frac = (m[7] || '').slice(0, 9).replace(/0+$/, '');
    var yy = t.getUTCFullYear();
    var p2 = function (n) { return String(n).padStart(2, '0'); };
    return (yy < 0 ? '-' + String(-yy).padStart(4, '0') : String(yy).padStart(4, '0')) + '-' + p2(t.getUTCMonth() + 1) + '-' +
      p2(t.getUTCDate()) + 'T' + p2(t.getUTCHours()) + ':' + p2(t.getUTCMinutes()) + ':' + p2(t.getUTCSeconds()) +
      (frac ? '.' + frac : '') + 'Z';
  }

  // stubField is audit.stubField: what a redacted entry may hold.
  function stubField(name, value) {
    if (['seq', 'prev_hash', 'hash', 'redacted', 'v', 'content_hash'].indexOf(name) >= 0) return true;
    var empty = { at: '"0001-01-01T00:00:00Z"', actor: '""', partner_id: '""', action: '""', details: 'null' };
    return Object.prototype.hasOwnProperty.call(empty, name) && value === empty[name];
  }

  // readExport is audit.ReadExport: JSON values (one per line, as the
  // server writes them), then the {"head": ...} line.
  function readExport(b) {
    var sc = new Scanner(b), entries = [];
    for (var line = 1; ; line++) {
      if (sc.ws() < 0) throw new Error('the export has no signed head (truncated file?)');
      var n;
      try {
        n = sc.value(1);
      } catch (e) {
        if (e instanceof JSONError) throw new Error('line ' + line + ': ' + e.message);
        throw e;
      }
      if (n.t !== 'object' && n.t !== 'null') {
        throw new Error('line ' + line + ': json: cannot unmarshal ' + goKinds[n.t] + ' into Go value of type struct { Head *audit.Head "json:\\"head\\"" }');
      }
      var head = null, err = null;
      (n.members || []).forEach(function (m) {
        if (fold(m[0]) !== 'head') return;
        var v = m[1];
        if (v.t === 'null') head = null;
        else if (v.t !== 'object') err = err || 'json: cannot unmarshal ' + goKinds[v.t] + ' into Go struct field .head of type audit.Head';
        else {
          head = head || { seq: '0', hash: '', at: zeroTime, v2_from: '0', signature: '' };
          err = err || decodeStruct(b, v, headFields, 'Head', head);
        }
      });
      if (err) throw new Error('line ' + line + ': ' + err);
      if (head) {
        var c = sc.ws();
        if (c >= 0 && c !== 0x5d && c !== 0x7d) throw new Error('line ' + (line + 1) + ': entries after the head');
        return { entries: entries, head: head };
      }
      var e = newEntry();
      if (n.members) {
        err = decodeStruct(b, n, entryFields, 'Entry', e);
        if (err) throw new Error('line ' + line + ': ' + err);
      }
      if (e.redacted) {
        // What the line holds besides its place, for verify to refuse.
        var last = new Map();
        n.members.forEach(function (m) { last.set(m[0], rawString(b, m[1])); });
        last.forEach(function (v, k) { if (!stubField(k, v)) e.carried.push(k); });
      }
      entries.push(e);
    }
  }

  function str(bytes) { return bytes === null ? '' : bytes; }

  function contentHash(e) {
    return lengthPrefixed(['cleanroom-audit-content-v2', e.at, e.actor, e.partner_id, e.collab_id, e.action, str(e.details)]);
  }
  // entryHash is audit.Hash.
  function entryHash(e) {
    if (e.v !== '2') {
      return lengthPrefixed(['cleanroom-audit-v1', e.prev_hash, e.seq, e.at, e.actor, e.partner_id, e.collab_id, e.action, str(e.details)]);
    }
    return lengthPrefixed(['cleanroom-audit-v2', e.prev_hash, e.seq, e.redacted ? e.content_hash : contentHash(e)]);
  }

  function checkRedacted(e) {
    var carried = e.carried.slice();
    var add = function (has, name) {
      if (has && !carried.some(function (c) { return fold(c) === fold(name); })) carried.push(name);
    };
    add(e.at !== zeroTime, 'at');
    add(e.actor !== '', 'actor');
    add(e.partner_id !== '', 'partner_id');
    add(e.collab_id !== '', 'collab_id');
    add(e.action !== '', 'action');
    add(e.details !== null && e.details.length > 0 && text.decode(e.details) !== 'null', 'details');
    add(e.private !== null && e.private.length > 0, 'private');
    if (!carried.length) return null;
    carried.sort(function (a, b) { return a < b ? -1 : a > b ? 1 : 0; });
    return 'entry seq ' + e.seq + ': is marked redacted but carries ' + carried.join(', ') +
      '; a redacted entry gives only its place in the chain (seq, prev_hash, hash), and no hash covers anything else in it (edited entry)';
  }

  // checkPrivate is audit.CheckPrivate.
  function checkPrivate(e) {
    if (e.private === null || e.private.length === 0) return null;
    var want = '';
    try {
      var sc = new Scanner(e.details || new Uint8Array(0));
      if (sc.ws() < 0) throw new JSONError('unexpected end of JSON input');
      var d = sc.value(0);
      if (sc.ws() >= 0) sc.fail('after top-level value');
      if (d.t !== 'object' && d.t !== 'null') {
        throw new JSONError('json: cannot unmarshal ' + goKinds[d.t] + ' into Go value of type map[string]json.RawMessage');
      }
      // A map: the last of duplicate keys wins; only a string commits.
      (d.members || []).forEach(function (m) {
        if (m[0] === 'private_sha256') want = m[1].t === 'string' ? decodeString(e.details, m[1].s, m[1].e) : '';
      });
    } catch (err) {
      if (err instanceof JSONError) return 'entry seq ' + e.seq + ': details: ' + err.message;
      throw err;
    }
    if (want === '') return 'entry seq ' + e.seq + ': has private details its entry does not commit to';
    if (sha256hex(e.private) !== want) return 'entry seq ' + e.seq + ': private details do not match their commitment (edited entry)';
    return null;
  }

  // verifyChain is audit.Verify after the head's signature.
  function verifyChain(entries, head) {
    var prev = '0'.repeat(64), v2from = BigInt(head.v2_from);
    for (var i = 0; i < entries.length; i++) {
      var e = entries[i], err;
      if (e.seq !== String(i + 1)) return 'entry ' + (i + 1) + ': has sequence number ' + e.seq + ', want ' + (i + 1) + ' (entries removed or reordered)';
      if (e.prev_hash !== prev) return 'entry seq ' + e.seq + ': does not follow the entry before it (removed, reordered or inserted entries)';
      if (e.v !== '0' && e.v !== '2') return 'entry seq ' + e.seq + ': unknown entry version ' + e.v;
      if (v2from > 0n && BigInt(e.seq) >= v2from && e.v !== '2') {
        return 'entry seq ' + e.seq + ': is not a version 2 entry, though the signed head says every entry from ' + head.v2_from + ' is (downgraded or forged entry)';
      }
      if (e.redacted) {
        if ((err = checkRedacted(e))) return err;
        if (e.v === '2' && entryHash(e) !== e.hash) return 'entry seq ' + e.seq + ': redacted entry does not link to the one before it (edited, removed or forged entries)';
      } else {
        if (entryHash(e) !== e.hash) return 'entry seq ' + e.seq + ': content does not match its hash (edited entry)';
        if (e.content_hash !== '' && e.content_hash !== contentHash(e)) return 'entry seq ' + e.seq + ': content does not match its content hash (edited entry)';
        if ((err = checkPrivate(e))) return err;
      }
      prev = e.hash;
    }
    var n = BigInt(entries.length), hs = BigInt(head.seq);
    if (n < hs) return 'the export ends at entry ' + n + ' but the signed head is at ' + hs + ' (entries cut from the end)';
    if (n > hs) return 'the export has ' + (n - hs) + ' entries beyond the signed head (entry ' + hs + ')';
    if (prev !== head.hash) return 'entry seq ' + n + ": the chain does not end at the signed head's hash (the log was rewritten)";
    return null;
  }

  // base64 is Go's base64.StdEncoding.DecodeString (padded; newlines
  // ignored), or null.
  function base64(s) {
    s = s.replace(/[\r\n]/g, '');
    if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
    try {
      var bin = atob(s), out = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
      return out;
    } catch (e) {
      return null;
    }
  }

  var keyPrefix = 'cleanroom-audit-ed25519:';
  // parsePublicKey is audit.ParsePublicKey.
  function parsePublicKey(s) {
    s = String(s || '').trim();
    var b = s.indexOf(keyPrefix) === 0 ? base64(s.slice(keyPrefix.length)) : null;
    if (!b || b.length !== 32) throw new Error('not a cleanroom audit public key (want cleanroom-audit-ed25519:<base64>)');
    return b;
  }

  function headMessage(h) {
    var m = h.seq + '\n' + h.hash + '\n' + h.at;
    if (BigInt(h.v2_from) > 0n) return 'cleanroom-audit-head-v2\n' + m + '\n' + h.v2_from;
    return 'cleanroom-audit-head-v1\n' + m;
  }

  // verifySignature is audit.VerifyHead: true, false, or null when this
  // browser cannot check Ed25519.
  async function verifySignature(pub, head) {
    var subtle = window.crypto && window.crypto.subtle;
    if (!subtle) return null;
    var key;
    try {
      key = await subtle.importKey('raw', pub, { name: 'Ed25519' }, false, ['verify']);
    } catch (e) {
      if (e && e.name === 'NotSupportedError') return null; // no Ed25519 in this browser
      return false;
    }
    var sig = base64(head.signature);
    if (!sig || sig.length !== 64) return false;
    try {
      return await subtle.verify({ name: 'Ed25519' }, key, sig, encoder.encode(headMessage(head)));
    } catch (e) {
      return false;
    }
  }

  // verifyExport checks an export (text, or its bytes) with a public key
  // in the form cleanroom-audit-ed25519:BASE64, as `cleanroom audit
  // verify` does. It resolves to {ok, entries, redacted, headSeq, headAt,
  // signatureChecked, error}: ok only when the chain is whole and the
  // head's signature was checked and is the key's.
  CR.verifyExport = async function (input, publicKey) {
    var res = { ok: false, entries: 0, redacted: 0, headSeq: null, headAt: null, signatureChecked: false, error: null };
    var b = typeof input === 'string' ? encoder.encode(input) : input instanceof Uint8Array ? input : new Uint8Array(input);
    var pub, parsed;
    try {
      pub = parsePublicKey(publicKey);
      parsed = readExport(b);
    } catch (e) {
      res.error = e.message;
      return res;
    }
    var head = parsed.head, entries = parsed.entries;
    res.entries = entries.length;
    res.redacted = entries.filter(function (e) { return e.redacted; }).length;
    res.headSeq = Number(head.seq);
    res.headAt = head.at;
    var sig = await verifySignature(pub, head);
    if (sig === false) {
      res.signatureChecked = true;
      res.error = "the head's signature is not the server's (forged or altered head)";
      return res;
    }
    res.error = verifyChain(entries, head);
    if (sig === null && !res.error) {
      res.error = "the chain is whole, but this browser cannot check Ed25519 signatures: the head's signature was not checked (run cleanroom audit verify)";
      return res;
    }
    res.signatureChecked = true;
    res.ok = !res.error;
    return res;
  };

  // ---- Deletion receipts: audit.VerifyReceipt's signature check ----

  // goString is a string as Go's encoding/json writes it: JSON.stringify's
  // escapes, and also <, >, &, U+2028 and U+2029 (Go escapes them for
  // HTML); a lone surrogate is U+FFFD, as Go decodes it.
  function goString(s) {
    s = s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(^|[^\ud800-\udbff])[\udc00-\udfff]/g, function (m) {
      return m.length === 2 ? m[0] + '\ufffd' : '\ufffd';
    });
    return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, function (c) { return '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'); });
  }

  // goTime is a time as Go writes it back after reading it
  // (time.RFC3339Nano: no trailing zeros in the fraction, Z for a zero
  // offset), or null when Go would not read it.
  function goTime(s) {
    if (parseTime(s) === null) return null;
    var m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/.exec(s);
    var frac = (m[2] || '').slice(0, 9).replace(/0+$/, '');
    var zone = m[3] === '+00:00' || m[3] === '-00:00' ? 'Z' : m[3];
    return m[1] + (frac ? '.' + frac : '') + zone;
  }

  // receiptFields are audit.Receipt's fields in Go's order, each with its
  // kind and whether it is omitempty.
  var receiptFields = [['id', 'string'], ['kind', 'string'], ['collab_id', 'string'], ['partner_id', 'string'],
    ['audience_id', 'string', true], ['identifiers', 'int', true], ['audience_rows', 'int'], ['table_rows', 'map', true],
    ['tokens', 'int'], ['matches', 'int', true], ['cohorts', 'string'], ['at', 'time'], ['requested_at', 'time', true],
    ['audit_seq', 'int'], ['audit_hash', 'string'], ['signature', 'string']];

  // readReceipt decodes a receipt as json.Unmarshal does into
  // audit.Receipt (names matched in any case, null leaving a field
  // empty), or throws saying what is wrong.
  function readReceipt(text) {
    var v;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new Error('not JSON: ' + e.message);
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a receipt: want a JSON object, as cleanroom delete prints and the console downloads');
    var r = {}, kinds = {};
    receiptFields.forEach(function (f) { kinds[f[0]] = f[1]; });
    Object.keys(v).forEach(function (k) {
      var name = fold(k), kind = kinds[name], x = v[k];
      if (!kind || x === null) return;
      var bad = function () { throw new Error('not a receipt: ' + name + ' is not ' + { string: 'a string', int: 'a whole number', map: 'an object of whole numbers', time: 'an RFC 3339 time' }[kind]); };
      var whole = function (n) { return typeof n === 'number' && Number.isSafeInteger(n); };
      if (kind === 'string' && typeof x !== 'string') bad();
      if (kind === 'int' && !whole(x)) bad();
      if (kind === 'map' && (typeof x !== 'object' || Array.isArray(x) || Object.keys(x).some(function (t) { return !whole(x[t]); }))) bad();
      if (kind === 'time' && (typeof x !== 'string' || goTime(x) === null)) bad();
      r[name] = x;
    });
    return r;
  }

  // receiptMessage is what the server signed (audit.Receipt.message): the
  // receipt as Go marshals it, with the signature empty, after a prefix.
  function receiptMessage(r) {
    var parts = [];
    receiptFields.forEach(function (f) {
      var name = f[0], kind = f[1], x = name === 'signature' ? '' : r[name];
      if (x === undefined) x = kind === 'string' ? '' : kind === 'int' ? 0 : null;
      if (f[2] && (x === '' || x === 0 || x === null || (kind === 'map' && !Object.keys(x).length))) return;
      var out;
      if (kind === 'string') out = goString(x);
      else if (kind === 'int') out = String(x);
      else if (kind === 'time') out = goString(x === null ? zeroTime : goTime(x));
      else if (kind === 'map') {
        out = x === null ? 'null' : '{' + Object.keys(x).sort().map(function (t) { return goString(t) + ':' + x[t]; }).join(',') + '}';
      }
      parts.push(goString(name) + ':' + out);
    });
    return 'cleanroom-deletion-receipt-v1\n{' + parts.join(',') + '}';
  }

  // verifyReceipt checks a deletion receipt (its JSON text or bytes) with
  // the server's public key, as cleanroom receipt verify does without
  // --log. It resolves to {ok, receipt, signatureChecked, error}.
  CR.verifyReceipt = async function (input, publicKey) {
    var res = { ok: false, receipt: null, signatureChecked: false, error: null };
    var pub, r;
    try {
      pub = parsePublicKey(publicKey);
      r = readReceipt(typeof input === 'string' ? input : text.decode(input instanceof Uint8Array ? input : new Uint8Array(input)));
    } catch (e) {
      res.error = e.message;
      return res;
    }
    res.receipt = r;
    var subtle = window.crypto && window.crypto.subtle, key;
    if (!subtle) {
      res.error = 'this browser cannot check Ed25519 signatures here: the receipt was not checked (run cleanroom receipt verify)';
      return res;
    }
    try {
      key = await subtle.importKey('raw', pub, { name: 'Ed25519' }, false, ['verify']);
    } catch (e) {
      res.error = e && e.name === 'NotSupportedError' ? 'this browser cannot check Ed25519 signatures: the receipt was not checked (run cleanroom receipt verify)' : 'the public key cannot be used: ' + e.message;
      return res;
    }
    res.signatureChecked = true;
    var sig = base64(r.signature || '');
    var good = false;
    if (sig && sig.length === 64) {
      try {
        good = await subtle.verify({ name: 'Ed25519' }, key, sig, encoder.encode(receiptMessage(r)));
      } catch (e) {
        good = false;
      }
    }
    if (!good) res.error = "the receipt's signature is not the server's (forged or altered receipt)";
    res.ok = good;
    return res;
  };

  // For the tests of the verifier's parts.
  CR.verifyInternals = { sha256hex: sha256hex, parseTime: parseTime, decodeString: decodeString };
})();
