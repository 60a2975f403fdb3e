// The audit log, for auditors and admins: entries newest first, a page
// of 100 at a time (a log of any length shows as fast as its first
// page), filters, each entry's details, the signed head, and verifying
// the whole log in the page (verify.js).
(function () {
  'use strict';
  var CR = window.CR, el = CR.el;
  var pageSize = 100;
  var actions = ['server.init', 'partner.create', 'key.create', 'key.revoke', 'collaboration.propose', 'collaboration.approve',
    'collaboration.change_rules', 'collaboration.reject_rules', 'audience.upload', 'audience.delete',
    'match.start', 'match.points', 'match.complete', 'query.run', 'query.cached', 'query.refused', 'access.request',
    'deletion.identifiers', 'deletion.optout', 'deletion.audience', 'deletion.collaboration', 'deletion.expiry',
    'partner.report_settings'];

  // rfc3339 turns a datetime-local value (the browser's time zone) into
  // what the API reads.
  function rfc3339(v) {
    if (!v) return '';
    var d = new Date(v);
    if (isNaN(d)) throw new CR.APIError(400, { error: { code: 'invalid', message: 'not a time: ' + v } });
    return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  function pretty(v) {
    if (v === null || v === undefined) return null;
    return JSON.stringify(v, null, 2);
  }

  CR.auditView = function (app, alive) {
    var state = { before: null, newer: [], filters: {}, entries: [], collabs: {}, partners: {} };
    var f = {
      action: el('input', { test: 'audit-filter-action', list: 'audit-actions', placeholder: 'any action', 'aria-label': 'Action' }),
      actor: el('input', { test: 'audit-filter-actor', placeholder: 'any key (k_…)', 'aria-label': 'Actor', spellcheck: 'false' }),
      collab: el('input', { test: 'audit-filter-collab', list: 'audit-collabs', placeholder: 'any collaboration', 'aria-label': 'Collaboration', spellcheck: 'false' }),
      since: el('input', { type: 'datetime-local', test: 'audit-filter-since', 'aria-label': 'Since' }),
      until: el('input', { type: 'datetime-local', test: 'audit-filter-until', 'aria-label': 'Until' })
    };
    var collabList = el('datalist', { id: 'audit-collabs' });
    var filters = el('form', { class: 'toolbar filters', onsubmit: function (e) { e.preventDefault(); apply(); } },
      f.action, el('datalist', { id: 'audit-actions' }, actions.map(function (a) { return el('option', { value: a }); })),
      f.actor, f.collab, collabList,
      el('label', { text: 'since' }, f.since), el('label', { text: 'until' }, f.until),
      el('button', { type: 'submit', class: 'primary', test: 'audit-apply', text: 'Filter' }),
      el('button', { type: 'button', text: 'Clear', onclick: function () {
        Object.keys(f).forEach(function (k) { f[k].value = ''; });
        apply();
      } }));
    var tbody = el('tbody');
    var table = el('table', { class: 'data clickable audit', test: 'audit-table' },
      el('thead', null, el('tr', null, ['Seq', 'Time (UTC)', 'Action', 'Actor', 'Partner', 'Collaboration'].map(function (h) { return el('th', { text: h }); }))),
      tbody);
    var msg = el('div');
    var newer = el('button', { test: 'audit-newer', text: '← Newer', disabled: true, onclick: function () {
      state.before = state.newer.pop();
      load();
    } });
    var older = el('button', { test: 'audit-older', text: 'Older →', disabled: true, onclick: function () {
      state.newer.push(state.before);
      state.before = state.entries[state.entries.length - 1].seq;
      load();
    } });
    var pageInfo = el('span', { class: 'muted small' });
    var head = el('section', { class: 'card', test: 'audit-head' }, el('h3', { text: 'Signed head' }), el('p', { class: 'muted', text: 'Loading…' }));
    var detail = el('section', { class: 'card detail', hidden: true });
    var side = el('aside', { class: 'side' }, detail, head, verifyCard());
    CR.append(app, [filters, el('div', { class: 'audit-layout' },
      el('section', { class: 'card' }, msg, el('div', { class: 'scroll' }, table), el('div', { class: 'pager' }, newer, pageInfo, older)), side)]);

    // The first page of entries goes first; the rest waits for it, so a
    // long log shows as soon as the server has read a page.
    load().then(function () {
      if (!alive()) return;
      loadHead();
      loadNames();
      CR.load(['verify.js']).catch(function () { /* loaded again on Verify */ });
    });

    function loadHead() {
      CR.guard(alive, head, CR.api('GET', '/v1/audit/head').then(function (h) {
        if (!alive()) return;
        var hd = h.head || {};
        CR.clear(head);
        CR.append(head, [el('h3', { text: 'Signed head' }),
          el('dl', { class: 'facts-list' },
            el('dt', { text: 'Last entry' }), el('dd', { text: '#' + hd.seq }),
            el('dt', { text: 'Signed' }), el('dd', { text: CR.time(hd.at) }),
            el('dt', { text: 'Hash' }), el('dd', { class: 'mono small wrap', text: hd.hash }),
            hd.v2_from ? [el('dt', { text: 'Version 2 from' }), el('dd', { text: '#' + hd.v2_from })] : null,
            el('dt', { text: 'Signature' }), el('dd', { class: 'mono small wrap', text: hd.signature }),
            el('dt', { text: 'Key' }), el('dd', { class: 'mono small wrap', text: h.public_key })),
          el('p', { class: 'small muted', text: 'The server signs the head of the hash chain: every entry up to it is bound by it. Verify checks that in this page.' })]);
      }));
    }

    // loadNames names IDs: every collaboration this key may read, and its
    // partners.
    function loadNames() {
      CR.api('GET', '/v1/collaborations').then(function (l) {
        if (!alive()) return;
        (l.collaborations || []).forEach(function (c) {
          state.collabs[c.id] = c.name;
          state.partners[c.proposer] = c.proposer_name;
          state.partners[c.partner] = c.partner_name;
          collabList.appendChild(el('option', { value: c.id, text: c.name }));
        });
        if (state.entries.length) rows();
      }, function () { /* names are a nicety: IDs still show */ });
    }

    function apply() {
      try {
        state.filters = { action: f.action.value.trim(), actor: f.actor.value.trim(), collab: f.collab.value.trim(), since: rfc3339(f.since.value), until: rfc3339(f.until.value) };
      } catch (e) {
        CR.clear(msg).appendChild(CR.errorBox(e));
        return;
      }
      state.before = null;
      state.newer = [];
      load();
    }

    function load() {
      var q = Object.assign({ order: 'desc', limit: pageSize, before: state.before }, state.filters);
      older.disabled = newer.disabled = true;
      return CR.guard(alive, msg, CR.api('GET', '/v1/audit', { query: q }).then(function (l) {
        if (!alive()) return;
        CR.clear(msg);
        state.entries = l.entries || [];
        rows();
        var es = state.entries;
        pageInfo.textContent = es.length ? 'entries #' + es[0].seq + ' to #' + es[es.length - 1].seq : state.before ? 'no older entries' : 'no entries';
        older.disabled = es.length < pageSize;
        newer.disabled = !state.newer.length;
      }));
    }

    // summary is an entry's details in a line: what they say, without
    // the hashes and nonces that bind them.
    function summary(d) {
      if (d === null || d === undefined) return '';
      if (typeof d !== 'object' || Array.isArray(d)) return JSON.stringify(d);
      return Object.keys(d).filter(function (k) { return !/sha256|hash|nonce/.test(k); }).map(function (k) {
        var v = d[k];
        return k + ': ' + (typeof v === 'string' ? v.replace(/\s+/g, ' ') : JSON.stringify(v));
      }).join(' · ');
    }

    function name(map, id) { return id ? map[id] || id : '–'; }

    function rows() {
      var me = CR.me;
      state.partners[me.partner_id] = me.partner_name;
      CR.clear(tbody);
      var frag = document.createDocumentFragment();
      state.entries.forEach(function (e) {
        var d = summary(e.details);
        frag.appendChild(el('tr', { test: 'audit-row', 'data-seq': String(e.seq), tabindex: '0', onclick: function () { show(e); },
          onkeydown: function (ev) { if (ev.key === 'Enter') show(e); } },
          CR.td('#' + e.seq, 'n'), CR.td(CR.time(e.at), 'nowrap'),
          CR.td([el('code', { text: e.action }), d ? el('div', { class: 'small muted summary', text: d.length > 100 ? d.slice(0, 100) + '…' : d }) : null]),
          CR.td(e.actor, 'mono small'), CR.td(name(state.partners, e.partner_id), 'nowrap'), CR.td(name(state.collabs, e.collab_id), 'nowrap')));
      });
      tbody.appendChild(frag);
      // For the first-view benchmark: when a page of entries is shown.
      performance.mark('cr:audit-rows');
    }

    function show(e) {
      CR.clear(detail);
      detail.hidden = false;
      detail.setAttribute('data-test', 'audit-detail');
      tbody.querySelectorAll('tr.selected').forEach(function (r) { r.classList.remove('selected'); });
      var row = tbody.querySelector('tr[data-seq="' + e.seq + '"]');
      if (row) row.classList.add('selected');
      CR.append(detail, [
        el('h3', { text: 'Entry #' + e.seq + ': ' + e.action }),
        el('dl', { class: 'facts-list' },
          el('dt', { text: 'Time' }), el('dd', { text: CR.time(e.at) + ' (' + e.at + ')' }),
          el('dt', { text: 'Actor' }), el('dd', { class: 'mono', text: e.actor }),
          el('dt', { text: 'Partner' }), el('dd', { text: name(state.partners, e.partner_id) + ' (' + e.partner_id + ')' }),
          el('dt', { text: 'Collaboration' }), el('dd', { text: e.collab_id ? name(state.collabs, e.collab_id) + ' (' + e.collab_id + ')' : '–' }),
          el('dt', { text: 'Hash' }), el('dd', { class: 'mono small wrap', text: e.hash }),
          el('dt', { text: 'Previous' }), el('dd', { class: 'mono small wrap', text: e.prev_hash })),
        el('h4', { text: 'Details' }), el('pre', { class: 'json', text: pretty(e.details) || 'none' }),
        el('h4', { text: 'Private part' }),
        e.private ? el('pre', { class: 'json', text: pretty(e.private) }) :
          el('p', { class: 'small muted', text: 'None, or not yours to read: an entry\'s private part (facts about its partner\'s own data) goes to that partner and the operator only. The details commit to it (private_sha256).' })
      ]);
    }

    function verifyCard() {
      var pub = el('input', { test: 'pubkey-input', id: 'pubkey', spellcheck: 'false', placeholder: 'cleanroom-audit-ed25519:… (empty: ask the server)' });
      var result = el('div', { class: 'verify-result', test: 'verify-result', 'aria-live': 'polite' });
      var save = el('span');
      var file = el('input', { type: 'file', test: 'verify-file', id: 'verify-file', accept: '.ndjson,.jsonl,.json,application/x-ndjson' });
      var run = el('button', { class: 'primary', test: 'verify-run', text: 'Verify the log', onclick: function () { verify(null); } });
      file.addEventListener('change', function () {
        if (file.files && file.files[0]) verify(file.files[0]);
      });
      return el('section', { class: 'card' },
        el('h3', { text: 'Verify the log' }),
        el('p', { class: 'small muted', text: 'Checks every entry\'s hash, every link of the chain (through other partners\' entries, which show only their hashes), ' +
          'each private part against its commitment, and the head\'s Ed25519 signature, here in the page, as cleanroom audit verify does.' }),
        el('label', { for: 'pubkey', text: 'Server\'s public key' }), pub,
        el('p', { class: 'small muted', text: 'A key the server gives proves only that the server signed; paste the key you got another way to trust nothing it says.' }),
        el('div', { class: 'toolbar' }, run, el('label', { class: 'button', for: 'verify-file', text: 'Verify a file…' }), file),
        result, save);

      async function verify(f) {
        result.removeAttribute('data-ok');
        result.className = 'verify-result';
        result.textContent = f ? 'Reading ' + f.name + '…' : 'Fetching the export…';
        CR.clear(save);
        try {
          var key = pub.value.trim(), from = 'pasted';
          if (!key) {
            key = (await CR.api('GET', '/v1/audit/pubkey')).public_key;
            from = 'from the server';
          }
          var bytes;
          if (f) {
            bytes = new Uint8Array(await f.arrayBuffer());
          } else {
            var res = await CR.api('GET', '/v1/audit/export', { raw: true });
            bytes = new Uint8Array(await res.arrayBuffer());
            var url = URL.createObjectURL(new Blob([bytes], { type: 'application/x-ndjson' }));
            save.appendChild(el('a', { href: url, download: 'audit-export-' + new Date().toISOString().slice(0, 10) + '.ndjson', class: 'small', text: 'Save this export' }));
          }
          result.textContent = 'Verifying…';
          await CR.load(['verify.js']);
          var t0 = performance.now();
          var r = await CR.verifyExport(bytes, key);
          var ms = Math.round(performance.now() - t0);
          result.setAttribute('data-ok', r.ok ? 'true' : 'false');
          result.className = 'verify-result ' + (r.ok ? 'ok' : 'bad');
          CR.clear(result);
          CR.append(result, [
            el('strong', { text: r.ok ? 'OK' : 'FAILED' }), ': ',
            r.ok ? CR.plural(r.entries, 'entry', 'entries') + ' (' + r.redacted + ' of other partners, bound but not shown), signed head at ' + r.headSeq +
              ' (' + CR.time(r.headAt) + ')' : r.error,
            el('div', { class: 'small muted', text: (f ? f.name : 'the server\'s export') + ', key ' + from + ': ' + key + ' · ' + ms + ' ms' })
          ]);
        } catch (e) {
          if (e.status === 401) return;
          result.setAttribute('data-ok', 'false');
          result.className = 'verify-result bad';
          CR.clear(result).appendChild(CR.errorBox(e));
        }
      }
    }
  };
})();
