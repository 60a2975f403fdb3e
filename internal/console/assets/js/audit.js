// The audit log, for auditors and admins: entries newest first, a page
// of 100 at a time (a log of any length shows as fast as its first
// page), the total the filters match and a jump to any page, filters by
// collaboration name, action prefix and key label, every time in UTC,
// a CSV of the filtered view, each entry's details, the signed head, and
// verifying the whole log in the page (verify.js). Filters and page live
// in the URL (#/audit?action=query&page=2), so a shared link shows the
// same view.
(function () {
  'use strict';
  var CR = window.CR, el = CR.el;
  var pageSize = 100;
  var actions = ['server.init', 'partner.create', 'key.create', 'key.revoke', 'partner.exposure_cap', 'collaboration.propose', 'collaboration.approve',
    'collaboration.change_rules', 'collaboration.reject_rules', 'audience.upload', 'audience.delete',
    'match.start', 'match.points', 'match.complete', 'match.refused', 'query.run', 'query.cached', 'query.refused', 'access.request',
    'deletion.identifiers', 'deletion.optout', 'deletion.audience', 'deletion.collaboration', 'deletion.expiry',
    'partner.report_settings', 'backup.taken'];
  // The action filter takes a prefix at a dot too: query is every query.*.
  var prefixes = actions.map(function (a) { return a.split('.')[0]; }).filter(function (p, i, all) { return all.indexOf(p) === i; });
  var filterKeys = ['collab', 'action', 'actor', 'since', 'until'];

  // The pickers show and take UTC, as the table does: a datetime-local
  // value has no zone, and reading it as the browser's would shift it.
  function fromPicker(v, name) {
    if (!v) return '';
    var s = (v.length === 16 ? v + ':00' : v) + 'Z';
    if (isNaN(Date.parse(s))) throw new CR.APIError(400, { error: { code: 'invalid', message: name + ': not a time: ' + v } });
    return s;
  }
  function toPicker(rfc) {
    var t = Date.parse(rfc);
    return isNaN(t) ? '' : new Date(t).toISOString().slice(0, 19);
  }

  // fromURL reads the view's state from the location's hash.
  function fromURL() {
    var h = location.hash, i = h.indexOf('?');
    var p = new URLSearchParams(i >= 0 ? h.slice(i + 1) : '');
    var filters = {};
    filterKeys.forEach(function (k) { filters[k] = (p.get(k) || '').trim(); });
    var page = parseInt(p.get('page'), 10);
    return { filters: filters, page: page > 0 ? page : 1 };
  }

  function pretty(v) {
    if (v === null || v === undefined) return null;
    return JSON.stringify(v, null, 2);
  }

  CR.auditView = function (app, alive) {
    var initial = fromURL();
    var state = { page: initial.page, total: 0, filters: initial.filters, entries: [], collabs: {}, partners: {}, labels: {} };
    var f = {
      collab: el('input', { test: 'audit-filter-collab', id: 'audit-collab', list: 'audit-collabs', placeholder: 'name or id', spellcheck: 'false' }),
      action: el('input', { test: 'audit-filter-action', id: 'audit-action', list: 'audit-actions', placeholder: 'query, query.run…', spellcheck: 'false' }),
      actor: el('input', { test: 'audit-filter-actor', id: 'audit-actor', list: 'audit-actors', placeholder: 'key label or id', spellcheck: 'false' }),
      since: el('input', { type: 'datetime-local', step: '1', test: 'audit-filter-since', id: 'audit-since' }),
      until: el('input', { type: 'datetime-local', step: '1', test: 'audit-filter-until', id: 'audit-until' })
    };
    var collabList = el('datalist', { id: 'audit-collabs' });
    var actorList = el('datalist', { id: 'audit-actors' });
    function field(k, label) { return el('label', { for: 'audit-' + k }, label, f[k]); }
    var filters = el('form', { class: 'toolbar filters', onsubmit: function (e) { e.preventDefault(); apply(); } },
      field('collab', 'Collaboration'), collabList,
      field('action', 'Action'), el('datalist', { id: 'audit-actions' }, prefixes.concat(actions).map(function (a) { return el('option', { value: a }); })),
      field('actor', 'Actor'), actorList,
      field('since', 'From (UTC)'), field('until', 'Before (UTC)'),
      el('span', { class: 'muted small', test: 'audit-zone', text: 'Times are UTC, as in the log.' }),
      el('button', { type: 'submit', class: 'primary', test: 'audit-apply', text: 'Filter' }),
      el('button', { type: 'button', test: 'audit-clear', text: 'Clear', onclick: function () {
        Object.keys(f).forEach(function (k) { f[k].value = ''; });
        apply();
      } }));
    var csvBox = el('span', { class: 'small' });
    var csvButton = el('button', { type: 'button', test: 'audit-csv', text: 'Download CSV', onclick: downloadCSV });
    var tbody = el('tbody');
    var table = el('table', { class: 'data clickable audit', test: 'audit-table' },
      el('thead', null, el('tr', null, ['Seq', 'Time (UTC)', 'Action', 'Actor', 'Partner', 'Collaboration'].map(function (h) { return el('th', { text: h }); }))),
      tbody);
    var msg = el('div');
    var newer = el('button', { test: 'audit-newer', text: '← Newer', disabled: true, onclick: function () { go(state.page - 1); } });
    var older = el('button', { test: 'audit-older', text: 'Older →', disabled: true, onclick: function () { go(state.page + 1); } });
    var pageInput = el('input', { type: 'number', min: '1', test: 'audit-page', id: 'audit-page', class: 'page-input', 'aria-label': 'Page' });
    var pages = el('span', { test: 'audit-pages' });
    var total = el('span', { class: 'muted small', test: 'audit-total', 'aria-live': 'polite' });
    var jump = el('form', { class: 'page-jump', onsubmit: function (e) {
      e.preventDefault();
      var n = parseInt(pageInput.value, 10);
      if (n > 0) go(n);
    } }, el('label', { for: 'audit-page', text: 'Page' }), pageInput, pages, el('button', { type: 'submit', test: 'audit-go', text: 'Go' }));
    var head = el('section', { class: 'card', test: 'audit-head' }, el('h3', { text: 'Signed head' }), el('p', { class: 'muted', text: 'Loading…' }));
    var detail = el('section', { class: 'card detail', hidden: true });
    var side = el('aside', { class: 'side' }, detail, head, verifyCard());
    CR.append(app, [filters, el('div', { class: 'audit-layout' },
      el('section', { class: 'card' }, el('div', { class: 'toolbar' }, total, csvButton, csvBox), msg,
        el('div', { class: 'scroll' }, table), el('div', { class: 'pager' }, newer, jump, older)), side)]);
    showFilters();

    // The first page of entries goes first; the rest waits for it, so a
    // long log shows as soon as the server has read a page.
    load().then(function () {
      if (!alive()) return;
      loadHead();
      loadNames();
      CR.load(['verify.js']).catch(function () { /* loaded again on Verify */ });
    });

    function showFilters() {
      ['collab', 'action', 'actor'].forEach(function (k) { f[k].value = state.filters[k]; });
      f.since.value = toPicker(state.filters.since);
      f.until.value = toPicker(state.filters.until);
    }

    // toURL puts the filters and page in the location, as a new history
    // entry: the back button returns to the view before, and a copied
    // link opens this one. (pushState fires no hashchange: the view stays.)
    function toURL() {
      var p = new URLSearchParams();
      filterKeys.forEach(function (k) { if (state.filters[k]) p.set(k, state.filters[k]); });
      if (state.page > 1) p.set('page', String(state.page));
      var h = '#/audit' + (String(p) ? '?' + p : '');
      if (h !== location.hash) history.pushState(null, '', h);
    }

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
          collabList.appendChild(el('option', { value: c.name || c.id, text: c.id }));
        });
        if (state.entries.length) rows();
      }, function () { /* names are a nicety: IDs still show */ });
    }

    function apply() {
      var next = {};
      try {
        ['collab', 'action', 'actor'].forEach(function (k) { next[k] = f[k].value.trim(); });
        next.since = fromPicker(f.since.value, 'From');
        next.until = fromPicker(f.until.value, 'Before');
      } catch (e) {
        CR.clear(msg).appendChild(CR.errorBox(e));
        return;
      }
      state.filters = next;
      state.page = 1;
      toURL();
      load();
    }

    function go(page) {
      state.page = Math.max(1, page);
      toURL();
      load();
    }

    function load() {
      var q = Object.assign({ order: 'desc', limit: pageSize, offset: (state.page - 1) * pageSize }, state.filters);
      older.disabled = newer.disabled = true;
      return CR.guard(alive, msg, CR.api('GET', '/v1/audit', { query: q }).then(function (l) {
        if (!alive()) return;
        CR.clear(msg);
        state.entries = l.entries || [];
        state.total = l.total || 0;
        Object.keys(l.labels || {}).forEach(function (id) {
          if (!state.labels[id]) actorList.appendChild(el('option', { value: l.labels[id], text: id }));
          state.labels[id] = l.labels[id];
        });
        rows();
        var es = state.entries, last = Math.max(1, Math.ceil(state.total / pageSize));
        total.textContent = CR.plural(state.total, 'entry', 'entries') + (es.length ? ' · #' + es[0].seq + ' to #' + es[es.length - 1].seq : '');
        pageInput.value = String(state.page);
        pageInput.max = String(last);
        pages.textContent = 'of ' + CR.num(last);
        if (!es.length) {
          msg.appendChild(el('p', { class: 'muted', test: 'audit-empty', text: state.total ? 'No entries on page ' + state.page + ': the last is ' + last + '.' : 'No entries match.' }));
        }
        older.disabled = state.page >= last;
        newer.disabled = state.page <= 1;
      }));
    }

    // downloadCSV saves the filtered view, every page of it, as the
    // server writes it (cells that a spreadsheet would run are defused).
    function downloadCSV() {
      csvButton.disabled = true;
      CR.clear(csvBox).appendChild(document.createTextNode('Preparing…'));
      CR.guard(alive, csvBox, CR.api('GET', '/v1/audit', { query: Object.assign({ format: 'csv', order: 'desc' }, state.filters), raw: true })
        .then(function (res) { return res.blob(); })
        .then(function (blob) {
          if (!alive()) return;
          var old = csvBox.querySelector('a');
          if (old) URL.revokeObjectURL(old.href);
          var a = el('a', { href: URL.createObjectURL(blob), test: 'audit-csv-link', download: 'audit-' + new Date().toISOString().slice(0, 19).replace(/:/g, '') + 'Z.csv',
            text: 'Save the CSV again' });
          CR.clear(csvBox).appendChild(a);
          a.click();
        })).then(function () { csvButton.disabled = false; });
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

    // actor shows a key by its label when the key is the reader's own
    // partner's (the API gives no other partner's labels).
    function actor(id) {
      var l = state.labels[id];
      return l ? [el('span', { class: 'label', text: l }), el('div', { class: 'mono small muted', text: id })] : el('span', { class: 'mono small', text: id });
    }

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
          CR.td(actor(e.actor)), CR.td(name(state.partners, e.partner_id), 'nowrap'), CR.td(name(state.collabs, e.collab_id), 'nowrap')));
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
          el('dt', { text: 'Time (UTC)' }), el('dd', { text: CR.time(e.at) + ' (' + e.at + ')' }),
          el('dt', { text: 'Actor' }), el('dd', { class: 'mono', text: state.labels[e.actor] ? state.labels[e.actor] + ' (' + e.actor + ')' : e.actor }),
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
