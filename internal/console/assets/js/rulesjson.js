// The rules form's JSON parts (public_groups, templates): parsing with
// the place of a syntax error as a line and column (as the server's
// wire.DecodeJSON says it), and the checks of their shape the server's
// wire.Rules.Validate makes. No DOM: the console's tests run it in Node
// beside the Go it mirrors.
(function () {
  'use strict';
  var CR = (window.CR = window.CR || {});

  var NAME = /^[a-z][a-z0-9_]{0,62}$/; // wire.ColumnNamePattern
  var MAX_PUBLIC = 1000; // wire.MaxPublicValues
  var PLACEHOLDER = /\{\{([a-z][a-z0-9_]*)\}\}/g; // wire's placeholder
  var CONTROL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u; // wire.IsControl

  // place is offset's line and column in text, both from 1, the column
  // in characters (as wire.JSONError's).
  function place(text, offset) {
    var before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
    var nl = before.lastIndexOf('\n');
    return { line: before.split('\n').length, column: Array.from(before.slice(nl + 1)).length + 1 };
  }

  // syntaxError finds JSON.parse's complaint: the offset of the first
  // character that does not fit, and what was expected there.
  function syntaxError(s) {
    var i = 0;
    function Fail(at, what) { this.at = at; this.what = what; }
    function fail(at, what) { throw new Fail(at, what); }
    function end() { fail(s.replace(/[ \t\r\n]+$/, '').length, 'the JSON ends early: a closing } or ] or " is missing'); }
    function ws() { while (i < s.length && ' \t\r\n'.indexOf(s[i]) >= 0) i++; }
    function str() {
      i++;
      for (;;) {
        if (i >= s.length) end();
        var c = s[i];
        if (c === '"') { i++; return; }
        if (c === '\\') {
          i++;
          if (i >= s.length) end();
          if (s[i] === 'u') {
            for (var k = 1; k <= 4; k++) {
              if (i + k >= s.length) end();
              if (!/[0-9a-fA-F]/.test(s[i + k])) fail(i + k, 'a \\u escape takes four hex digits');
            }
            i += 5;
            continue;
          }
          if ('"\\/bfnrt'.indexOf(s[i]) < 0) fail(i, 'invalid escape \\' + s[i] + ' in a string');
          i++;
          continue;
        }
        if (c < ' ') fail(i, 'a control character in a string: write it as an escape such as \\n');
        i++;
      }
    }
    function value() {
      ws();
      if (i >= s.length) end();
      var c = s[i];
      if (c === '{') {
        i++; ws();
        if (s[i] === '}') { i++; return; }
        for (;;) {
          ws();
          if (i >= s.length) end();
          if (s[i] !== '"') fail(i, 'a key in double quotes is expected, not ' + JSON.stringify(s[i]) + (s[i] === '}' ? ' (no comma after the last member)' : ''));
          str(); ws();
          if (i >= s.length) end();
          if (s[i] !== ':') fail(i, 'a colon is expected after the key, not ' + JSON.stringify(s[i]));
          i++;
          value(); ws();
          if (i >= s.length) end();
          if (s[i] === ',') { i++; continue; }
          if (s[i] === '}') { i++; return; }
          fail(i, 'a comma or } is expected after a value, not ' + JSON.stringify(s[i]));
        }
      }
      if (c === '[') {
        i++; ws();
        if (s[i] === ']') { i++; return; }
        for (;;) {
          if (s[i] === ']') fail(i, 'a value is expected, not "]" (no comma after the last element)');
          value(); ws();
          if (i >= s.length) end();
          if (s[i] === ',') { i++; ws(); continue; }
          if (s[i] === ']') { i++; return; }
          fail(i, 'a comma or ] is expected after a value, not ' + JSON.stringify(s[i]));
        }
      }
      if (c === '"') { str(); return; }
      if (c === '-' || (c >= '0' && c <= '9')) {
        var re = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
        re.lastIndex = i;
        var m = re.exec(s);
        if (!m) {
          if (i + 1 >= s.length) end();
          fail(i + 1, 'a digit is expected after "-"');
        }
        i += m[0].length;
        // 1. or 1e: the digits after them are missing.
        if (s[i] === '.' || s[i] === 'e' || s[i] === 'E') { if (i + 1 >= s.length) end(); fail(i + 1, 'a digit is expected in the number'); }
        return;
      }
      var words = ['true', 'false', 'null'];
      for (var w = 0; w < words.length; w++) {
        if (words[w][0] !== c) continue;
        for (var k = 0; k < words[w].length; k++) {
          if (i + k >= s.length) end();
          if (s[i + k] !== words[w][k]) fail(i + k, 'invalid character ' + JSON.stringify(s[i + k]) + ' in the literal ' + words[w]);
        }
        i += words[w].length;
        return;
      }
      fail(i, 'a value is expected, not ' + JSON.stringify(c) + (c === '\'' ? ' (JSON strings take double quotes)' : ''));
    }
    try {
      value(); ws();
      if (i < s.length) fail(i, 'data after the JSON value');
    } catch (e) {
      if (e instanceof Fail) return e;
      throw e;
    }
    return null;
  }

  // parse reads text as JSON: {value}, or {error} with the line and
  // column of a syntax error ("line 2, column 5: ..."). Blank text is
  // empty, the value given.
  function parse(text, empty) {
    if (!String(text).trim()) return { value: empty };
    try {
      return { value: JSON.parse(text) };
    } catch (e) {
      var f = syntaxError(text);
      if (!f) {
        // The browser's own position, where it gives one.
        var m = /at position (\d+)/.exec(e.message || '');
        f = { at: m ? Number(m[1]) : 0, what: String(e.message || e).replace(/ in JSON at position \d+.*$/, '') };
      }
      var p = place(text, f.at);
      return { error: { line: p.line, column: p.column, offset: f.at, what: f.what, message: 'line ' + p.line + ', column ' + p.column + ': ' + f.what } };
    }
  }

  function kind(v) {
    if (v === null) return 'null';
    if (Array.isArray(v)) return 'a list [...]';
    if (typeof v === 'object') return 'an object {...}';
    if (typeof v === 'number') return 'a number';
    if (typeof v === 'boolean') return 'true or false';
    return 'a string';
  }
  function isObject(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }
  // fields refuses a member of o not in names, as the server refuses an
  // unknown field.
  function unknown(o, names) {
    var k = Object.keys(o).filter(function (x) { return names.indexOf(x) < 0; })[0];
    return k === undefined ? '' : 'unknown field "' + k + '" (a misspelt name would silently keep a default, so none is ignored); the fields are ' + names.join(', ');
  }
  function date(s) {
    if (typeof s !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(s)) return null;
    var d = new Date(s + 'T00:00:00Z');
    return isNaN(d) || d.toISOString().slice(0, 10) !== s ? null : d;
  }
  function bytes(s) { return unescape(encodeURIComponent(s)).length; }

  // publicGroups says what is wrong with v as rule public_groups, as
  // wire's validatePublic would, or '' (names are checked against the
  // columns elsewhere). null is none.
  function publicGroups(v) {
    if (v === null) return '';
    if (!isObject(v)) return 'public_groups is an object {...} of dimension: values, not ' + kind(v) + '.';
    var keys = Object.keys(v);
    for (var n = 0; n < keys.length; n++) {
      var col = keys[n], p = v[col];
      var bad = function (m) { return col + ': ' + m; };
      if (!NAME.test(col)) return '"' + col + '" is not a column name: lower-case letters, digits and _, starting with a letter.';
      if (p === null) p = {};
      if (!isObject(p)) return bad('an object {"values": [...]} or {"dates": {"from": ..., "to": ..., "step_days": ...}} is expected, not ' + kind(p) + '.');
      var u = unknown(p, ['values', 'dates']);
      if (u) return bad(u + '.');
      var values = p.values === null || p.values === undefined ? [] : p.values;
      if (!Array.isArray(values)) return bad('values is a list [...], not ' + kind(values) + '.');
      var dates = p.dates === null || p.dates === undefined ? null : p.dates;
      if ((dates === null) === (values.length === 0)) return bad('give either values (a list) or dates (from, to, step_days).');
      var list = values;
      if (dates !== null) {
        if (!isObject(dates)) return bad('dates is an object {"from": "yyyy-mm-dd", "to": "yyyy-mm-dd", "step_days": 1}, not ' + kind(dates) + '.');
        u = unknown(dates, ['from', 'to', 'step_days']);
        if (u) return bad('dates: ' + u + '.');
        var step = dates.step_days === null || dates.step_days === undefined ? 0 : dates.step_days;
        if (typeof step !== 'number' || !Number.isInteger(step)) return bad('dates: step_days is a whole number, not ' + kind(step) + '.');
        var from = date(dates.from), to = date(dates.to);
        if (!from || !to) return bad('dates from ' + JSON.stringify(dates.from === undefined ? '' : dates.from) + ' and to ' + JSON.stringify(dates.to === undefined ? '' : dates.to) + ' must be yyyy-mm-dd.');
        if (step < 1 || to < from) return bad('dates need from <= to and step_days >= 1.');
        if (Math.floor((to - from) / 864e5 / step) + 1 > MAX_PUBLIC) return bad('more than ' + MAX_PUBLIC + ' values.');
        continue;
      }
      if (list.length > MAX_PUBLIC) return bad('more than ' + MAX_PUBLIC + ' values.');
      var first = '', seen = {};
      for (var i = 0; i < list.length; i++) {
        var x = list[i], k = typeof x;
        if (k !== 'string' && k !== 'number' && k !== 'boolean') return bad('value ' + JSON.stringify(x) + ' is not a string, number or boolean.');
        if (first && k !== first) return bad('values mix ' + first + 's and ' + k + 's; give one kind.');
        first = k;
        if (seen[k + ':' + x]) return bad('value ' + JSON.stringify(x) + ' is listed twice.');
        seen[k + ':' + x] = true;
      }
    }
    return '';
  }

  // templates says what is wrong with v as rule templates, as wire's
  // Template.Validate would, or ''. null is none.
  function templates(v) {
    if (v === null) return '';
    if (!Array.isArray(v)) return 'templates is a list [...] of templates, not ' + kind(v) + '.';
    var names = {};
    for (var n = 0; n < v.length; n++) {
      var t = v[n];
      var which = 'template ' + (n + 1);
      if (!isObject(t)) return which + ': an object {"name": ..., "sql": ..., "params": [...]} is expected, not ' + kind(t) + '.';
      var u = unknown(t, ['name', 'description', 'sql', 'params']);
      if (u) return which + ': ' + u + '.';
      var str = function (o, k) { return o[k] === null || o[k] === undefined ? '' : o[k]; };
      var tn = str(t, 'name'), sql = str(t, 'sql'), desc = str(t, 'description');
      if (typeof tn !== 'string' || typeof sql !== 'string' || typeof desc !== 'string') return which + ': name, description and sql are strings.';
      if (!NAME.test(tn)) return which + ': name ' + JSON.stringify(tn) + ' must be lower-case letters, digits and _, starting with a letter.';
      var bad = function (m) { return 'template ' + tn + ': ' + m; };
      if (CONTROL.test(desc)) return bad('the description holds a control character; it takes printable text only.');
      if (!sql.trim() || bytes(sql) > 10000) return bad('sql must be 1 to 10000 characters.');
      var params = t.params === null || t.params === undefined ? [] : t.params;
      if (!Array.isArray(params)) return bad('params is a list [...], not ' + kind(params) + '.');
      var declared = {};
      for (var i = 0; i < params.length; i++) {
        var p = params[i];
        if (!isObject(p)) return bad('parameter ' + (i + 1) + ': an object {"name": ..., "type": ...} is expected, not ' + kind(p) + '.');
        u = unknown(p, ['name', 'type', 'min', 'max', 'from', 'to', 'values', 'default']);
        if (u) return bad('parameter ' + (i + 1) + ': ' + u + '.');
        var pn = str(p, 'name'), type = str(p, 'type'), def = str(p, 'default');
        if (typeof pn !== 'string' || typeof type !== 'string' || typeof def !== 'string') return bad('parameter ' + (i + 1) + ': name, type and default are strings.');
        if (!NAME.test(pn) || declared[pn]) return bad('parameter ' + JSON.stringify(pn) + ' is not a name, or is declared twice.');
        declared[pn] = true;
        var min = p.min === undefined ? null : p.min, max = p.max === undefined ? null : p.max;
        if ((min !== null && !Number.isInteger(min)) || (max !== null && !Number.isInteger(max))) return bad('parameter ' + pn + ': min and max are whole numbers.');
        if ((p.from !== undefined && p.from !== null && typeof p.from !== 'string') || (p.to !== undefined && p.to !== null && typeof p.to !== 'string')) return bad('parameter ' + pn + ': from and to are strings.');
        var vals = p.values === null || p.values === undefined ? [] : p.values;
        if (!Array.isArray(vals) || vals.some(function (x) { return typeof x !== 'string'; })) return bad('parameter ' + pn + ': values is a list of strings.');
        switch (type) {
          case 'int': if (min === null || max === null || min > max) return bad('int parameter ' + pn + ' needs min <= max.'); break;
          case 'date': {
            var from = date(p.from), to = date(p.to);
            if (!from || !to || to < from) return bad('date parameter ' + pn + ' needs from <= to, as yyyy-mm-dd.');
            break;
          }
          case 'string': if (!vals.length) return bad('string parameter ' + pn + ' needs its values.'); break;
          case 'column': break;
          default: return bad('parameter ' + pn + ': type ' + JSON.stringify(type) + ' is not int, date, string or column.');
        }
        if (def !== '') {
          var why = '';
          if (type === 'int') {
            if (!/^[+-]?[0-9]+$/.test(def)) why = JSON.stringify(def) + ' is not a whole number';
            else if (Number(def) < min || Number(def) > max) why = Number(def) + ' is outside [' + min + ', ' + max + ']';
          } else if (type === 'date') {
            var d = date(def);
            if (!d) why = JSON.stringify(def) + ' is not a date (yyyy-mm-dd)';
            else if (d < date(p.from) || d > date(p.to)) why = def + ' is outside [' + p.from + ', ' + p.to + ']';
          } else if (type === 'string') {
            if (vals.indexOf(def) < 0) why = JSON.stringify(def) + ' is not one of ' + vals.join(', ');
          } else if (!NAME.test(def)) why = JSON.stringify(def) + ' is not a column name';
          if (why) return bad('parameter ' + pn + ': default: ' + why + '.');
        }
      }
      var used = {}, m;
      PLACEHOLDER.lastIndex = 0;
      while ((m = PLACEHOLDER.exec(sql))) {
        if (!declared[m[1]]) return bad('{{' + m[1] + '}} is not a declared parameter.');
        used[m[1]] = true;
      }
      var unused = Object.keys(declared).filter(function (x) { return !used[x]; })[0];
      if (unused) return bad('parameter ' + unused + ' is not used in the sql.');
      if (names[tn]) return 'templates: ' + tn + ' is declared twice.';
      names[tn] = true;
    }
    return '';
  }

  CR.rulesJSON = { parse: parse, place: place, publicGroups: publicGroups, templates: templates };
})();
