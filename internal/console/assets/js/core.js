// The console's core: the CR namespace, a DOM builder, the API client,
// what each role may do, and formatting. Classic scripts, no build step:
// each file adds to window.CR. Nothing here writes HTML from strings, so
// no data the API returns can become markup.
(function () {
  'use strict';
  var CR = (window.CR = window.CR || {});

  // el builds an element: props are attributes, except class, test
  // (data-test), text, and on* (event listeners); children are nodes,
  // strings, or arrays of them (null and false are skipped).
  CR.el = function (tag, props) {
    var e = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) {
      var v = props[k];
      if (v === null || v === undefined || v === false) return;
      if (k === 'class') e.className = v;
      else if (k === 'test') e.setAttribute('data-test', v);
      else if (k === 'text') e.textContent = v;
      else if (k.slice(0, 2) === 'on') e.addEventListener(k.slice(2), v);
      else if (k === 'value') e.value = v;
      else e.setAttribute(k, v === true ? '' : v);
    });
    CR.append(e, Array.prototype.slice.call(arguments, 2));
    return e;
  };
  CR.append = function (parent, kids) {
    (Array.isArray(kids) ? kids : [kids]).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      if (Array.isArray(c)) CR.append(parent, c);
      else parent.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    });
    return parent;
  };
  CR.clear = function (e) {
    while (e.firstChild) e.removeChild(e.firstChild);
    return e;
  };

  // load runs the console's other scripts (js/NAME), once each, in the
  // order given: index.html loads only what the audit log's first view
  // needs, and each view asks for the rest.
  var loading = {};
  CR.load = function (names) {
    return Promise.all(names.map(function (n) {
      if (!loading[n]) {
        loading[n] = new Promise(function (resolve, reject) {
          var s = document.createElement('script');
          s.src = '/console/js/' + n;
          s.async = false; // in insertion order
          s.onload = resolve;
          s.onerror = function () {
            delete loading[n];
            reject(new Error('could not load the console\'s ' + n + '; reload the page'));
          };
          document.head.appendChild(s);
        });
      }
      return loading[n];
    }));
  };

  // ---- The API ----

  CR.keyName = 'cleanroom.key';
  CR.key = null; // the signed-in API key's secret (sessionStorage)
  CR.me = null; // GET /v1/me

  // APIError is an error answer: {code, message, position} and the status.
  CR.APIError = function (status, body) {
    var e = (body && body.error) || {};
    this.status = status;
    this.code = e.code || 'http_' + status;
    this.message = e.message || 'the server answered ' + status;
    this.position = typeof e.position === 'number' ? e.position : null;
  };

  // api calls the API with the signed-in key. opts: query (object), body
  // (sent as JSON), raw (resolve to the Response), key (another key, for
  // signing in). A 401 signs out, back to the sign-in form with the
  // reason; every other error rejects with a CR.APIError.
  CR.api = async function (method, path, opts) {
    opts = opts || {};
    var q = new URLSearchParams();
    Object.keys(opts.query || {}).forEach(function (k) {
      var v = opts.query[k];
      if (v !== null && v !== undefined && v !== '') q.set(k, v);
    });
    var url = path + (String(q) ? '?' + q : '');
    var init = { method: method, headers: { Authorization: 'Bearer ' + (opts.key || CR.key) }, cache: 'no-store' };
    if (opts.body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    var res;
    try {
      res = await fetch(url, init);
    } catch (e) {
      // One banner says it for every request that fails this way; the
      // views show no box of their own (errorBox).
      CR.offline();
      throw new CR.APIError(0, { error: { code: 'network', message: 'the server cannot be reached' } });
    }
    CR.lastAnswer = new Date();
    if (!res.ok) {
      var body = null;
      try { body = await res.json(); } catch (e) { /* not JSON: the status says it */ }
      var err = new CR.APIError(res.status, body);
      if (res.status === 401) {
        // The API's message is advice to developers (the header to send);
        // a person signing in needs to know what to do.
        err.message = 'That key was not accepted: check it was copied whole, or ask your admin for a new one.';
        err.plain = true;
        if (!opts.key) CR.signOut(err);
      }
      throw err;
    }
    return opts.raw ? res : res.json();
  };

  // offline shows the one banner for a server that cannot be reached, with
  // Retry (the current view again), and marks what the page still shows
  // as out of date. online takes both away: each view starts with it.
  var banner = null;
  CR.lastAnswer = null;
  CR.offline = function () {
    var main = document.getElementById('app');
    if (main) main.setAttribute('data-stale', 'true');
    if (!banner) {
      banner = CR.el('div', { class: 'net-banner noprint', role: 'alert', test: 'network-banner' });
      var top = document.getElementById('top');
      if (top) top.parentNode.insertBefore(banner, top.nextSibling);
      else document.body.insertBefore(banner, document.body.firstChild);
    }
    var since = CR.lastAnswer ? ' What the page shows is from ' + CR.lastAnswer.toISOString().slice(11, 16) + ' UTC and may be out of date.' : '';
    CR.append(CR.clear(banner), [
      CR.el('span', { text: 'The console cannot reach the server: check your connection, or ask whoever runs the server whether it is up.' + since }),
      CR.el('button', { type: 'button', test: 'network-retry', text: 'Retry', onclick: function () { if (CR.route) CR.route(); } })
    ]);
    banner.hidden = false;
  };
  CR.online = function () {
    var main = document.getElementById('app');
    if (main) main.removeAttribute('data-stale');
    if (banner) banner.hidden = true;
  };

  // ---- Roles: what each may do, as the API's route table allows ----

  var everyone = ['admin', 'engineer', 'analyst', 'auditor', 'operator'];
  CR.allow = {
    collabs: everyone, // collaborations, their audiences, receipts, report, budget
    query: ['analyst'], // POST and GET .../queries
    approve: ['admin'], // POST .../approve and .../reject
    audit: ['auditor', 'admin', 'operator'], // /v1/audit, its head and export
    privacy: ['auditor', 'admin', 'operator'], // GET /v1/partners/:pid/privacy-report
    partners: ['admin', 'operator'] // GET /v1/partners
  };
  // role is the signed-in key's role as the API sees it: the operator's
  // admin key is a role of its own.
  CR.role = function () { return CR.me ? (CR.me.operator ? 'operator' : CR.me.role) : null; };
  CR.can = function (what) { return CR.allow[what].indexOf(CR.role()) >= 0; };
  // Each role's own pages: the operator's partners, an admin's keys, an
  // engineer's data (admin.js, engineer.js).
  CR.allow.managePartners = ['operator']; // POST and GET /v1/partners
  CR.allow.keys = ['admin']; // POST, GET and DELETE /v1/partners/:pid/keys (own partner)
  CR.allow.data = ['engineer']; // its partner's tables, matches and receipts

  // ---- Formatting ----

  CR.num = function (x, digits) {
    if (x === null || x === undefined || x === '') return '–';
    if (typeof x !== 'number') return String(x);
    if (Number.isInteger(x)) return x.toLocaleString('en-US');
    return x.toLocaleString('en-US', { maximumFractionDigits: digits === undefined ? 4 : digits });
  };
  // eps shows an epsilon or delta: small deltas in exponent form.
  CR.eps = function (x) {
    if (x === null || x === undefined) return '–';
    if (x !== 0 && Math.abs(x) < 1e-3) {
      var sup = { '-': '⁻', 0: '⁰', 1: '¹', 2: '²', 3: '³', 4: '⁴', 5: '⁵', 6: '⁶', 7: '⁷', 8: '⁸', 9: '⁹' };
      var m = x.toExponential(1).replace('.0e', 'e').split('e');
      return m[0] + '×10' + m[1].replace('+', '').split('').map(function (c) { return sup[c]; }).join('');
    }
    return String(Math.round(x * 1e6) / 1e6);
  };
  CR.date = function (s) {
    if (!s) return '–';
    var d = new Date(s);
    if (isNaN(d)) return String(s);
    return d.toISOString().slice(0, 10);
  };
  CR.time = function (s) {
    if (!s) return '–';
    var d = new Date(s);
    if (isNaN(d)) return String(s);
    return d.toISOString().slice(0, 19).replace('T', ' ') + 'Z';
  };
  CR.duration = function (sec) {
    if (sec === null || sec === undefined) return '–';
    if (sec < 60) return sec + ' s';
    if (sec < 3600) return Math.floor(sec / 60) + ' min' + (sec % 60 ? ' ' + (sec % 60) + ' s' : '');
    if (sec < 86400) return Math.floor(sec / 3600) + ' h' + (Math.floor(sec / 60) % 60 ? ' ' + (Math.floor(sec / 60) % 60) + ' min' : '');
    return Math.floor(sec / 86400) + ' d' + (Math.floor(sec / 3600) % 24 ? ' ' + (Math.floor(sec / 3600) % 24) + ' h' : '');
  };
  CR.plural = function (n, one, many) { return CR.num(n) + ' ' + (n === 1 ? one : many || one + 's'); };

  // partnerNames maps a collaboration's partner IDs to their names.
  CR.partnerNames = function (co) {
    var m = {};
    if (co) {
      m[co.proposer] = co.proposer_name || co.proposer;
      m[co.partner] = co.partner_name || co.partner;
    }
    return function (pid) { return m[pid] || pid; };
  };

  // errorBox shows an API error: its code, message and, for SQL, where.
  // A server that cannot be reached is the banner's to say (CR.offline):
  // here only a quiet note of what did not load. A plain message (a key
  // refused) needs no code before it.
  CR.errorBox = function (err, test) {
    var code = err && err.code ? err.code : 'error';
    if (code === 'network') return CR.el('p', { class: 'muted small', test: 'not-loaded', text: 'The server cannot be reached (see above): not done.' });
    return CR.el('div', { class: 'error', role: 'alert', test: test || 'error', 'data-code': code },
      err && err.plain ? null : [CR.el('strong', { class: 'code', text: code }), ' '],
      CR.el('span', { text: (err && err.message) || String(err) }),
      // where: the place said for people (the workbench: a line and
      // column of the SQL), else the byte offset the API gives.
      err && err.where ? CR.el('span', { class: 'pos', text: ' (' + err.where + ')' }) :
        err && err.position !== null && err.position !== undefined ? CR.el('span', { class: 'pos', text: ' (at byte ' + err.position + ')' }) : null);
  };

  // table builds a table from column headers and rows of cells.
  CR.table = function (props, head, rows) {
    return CR.el('table', props,
      CR.el('thead', null, CR.el('tr', null, head.map(function (h) { return CR.el('th', { text: h }); }))),
      CR.el('tbody', null, rows));
  };
  CR.td = function (v, cls) { return CR.el('td', { class: cls }, v); };
})();
