// An engineer's data (#/data): in each collaboration, its partner's own
// tables (rows, people, who can match, the consent mix), the matches, and
// its deletions and opt-outs with their signed receipts, each to download
// and to verify here in the page. Uploads, matches, deletions, opt-outs
// and access requests blind identifiers with the partner's key, which
// never leaves its machine: the page says which command does each.
(function () {
  'use strict';
  var CR = window.CR, el = CR.el;

  var kinds = {
    identifiers: 'people deleted', optout: 'opt-out', audience: 'table deleted', collaboration: 'collaboration deleted', expiry: 'table expired'
  };

  // cmd shows a command to copy.
  function cmd(text) { return el('code', { class: 'cmd', test: 'command', text: text }); }

  CR.dataView = function (app, alive) {
    var me = CR.me;
    var list = el('div', { test: 'data' }, el('p', { class: 'muted', text: 'Loading…' }));
    var verify = verifyCard();
    CR.append(app, [
      el('section', { class: 'card' },
        el('h2', { text: 'Your data' }),
        el('p', { text: 'What ' + (me.partner_name || me.partner_id) + ' holds in each collaboration: its tables, the matches, and its deletions and opt-outs with their signed receipts. ' +
          'Uploading, matching, deleting people and access requests blind identifiers with your partner\'s key for the collaboration, which stays on your machine: ' +
          'they run with the cleanroom command, as each section says.' })),
      list, verify.card
    ]);

    CR.guard(alive, list, CR.api('GET', '/v1/collaborations').then(function (l) {
      if (!alive()) return;
      var cs = l.collaborations || [];
      CR.clear(list);
      if (!cs.length) {
        list.appendChild(el('section', { class: 'card', test: 'data-empty' },
          el('p', { text: 'No collaboration yet. Your admin proposes one, or approves one another partner proposed; once both partners approve its rules, upload your tables:' }),
          cmd('cleanroom upload --collab COLLAB --psi-key KEYFILE --id-column email customers.csv')));
        return;
      }
      cs.forEach(function (co) { list.appendChild(collabCard(co, alive, verify)); });
    }));
  };

  function collabCard(co, alive, verify) {
    var me = CR.me, base = '/v1/collaborations/' + encodeURIComponent(co.id), names = CR.partnerNames(co);
    var tables = el('div', { test: 'data-tables' }, el('p', { class: 'muted', text: 'Loading…' }));
    var matches = el('div', { test: 'data-matches' }, el('p', { class: 'muted', text: 'Loading…' }));
    var receipts = el('div', { test: 'data-receipts' }, el('p', { class: 'muted', text: 'Loading…' }));
    var access = el('div', { test: 'data-access' }, el('p', { class: 'muted', text: 'Loading…' }));
    var card = el('section', { class: 'card data-collab', test: 'data-collab', 'data-id': co.id },
      el('h3', null, el('a', { href: '#/collab/' + encodeURIComponent(co.id) + '/collab', text: co.name || co.id }), ' ', el('span', { class: 'state ' + co.state, text: co.state })),
      el('p', { class: 'small muted' }, names(co.proposer) + ' × ' + names(co.partner) + ' · purpose ' + ((co.rules || {}).purpose || '–') + ' · ', el('span', { class: 'mono', text: co.id })),
      el('h4', { text: 'Your tables' }), tables,
      el('h4', { text: 'Matches' }), matches,
      el('h4', { text: 'Deletions and opt-outs' }), receipts,
      el('h4', { text: 'Access requests' }), access);
    if (co.state === 'deleted') {
      CR.clear(tables).appendChild(el('p', { class: 'muted', text: 'The collaboration is deleted, and every table and match with it: its receipt is below.' }));
      CR.clear(matches).appendChild(el('p', { class: 'muted', text: 'None: deleted with the collaboration.' }));
    } else {
      var report = CR.api('GET', base + '/report');
      CR.guard(alive, tables, Promise.all([CR.api('GET', base + '/audiences'), report]).then(function (x) {
        if (!alive()) return;
        drawTables(tables, co, x[0], x[1]);
      }));
      CR.guard(alive, matches, report.then(function (r) {
        if (!alive()) return;
        return drawMatches(matches, co, r.matches || [], alive);
      }));
    }
    CR.guard(alive, receipts, Promise.all([CR.api('GET', base + '/receipts'), co.state === 'deleted' ? { honoured: [] } : report]).then(function (x) {
      if (!alive()) return;
      drawReceipts(receipts, co, x[0].receipts || [], x[1].honoured || [], verify);
    }));
    CR.guard(alive, access, CR.api('GET', base + '/access-requests').then(function (l) {
      if (!alive()) return;
      drawAccess(access, co, l.access_requests || []);
    }));
    return card;
  }

  // drawAccess lists the partner's access requests: what each found of
  // its own data (the answer itself went to whoever asked).
  function drawAccess(box, co, ars) {
    CR.clear(box);
    box.appendChild(ars.length ? el('div', { class: 'scroll' }, CR.table({ class: 'data', test: 'access-list', 'aria-label': 'Access requests in ' + (co.name || co.id) },
      ['At', 'Asked by', 'Rows found', 'Opted out', 'Log entry'], ars.map(function (a) {
        var tables = Object.keys(a.table_rows || {}).sort().map(function (t) { return t + ' ' + CR.num(a.table_rows[t]); }).join(', ');
        return el('tr', { test: 'access-item' }, CR.td(CR.time(a.at)), CR.td([a.key_label || a.key_id, a.key_label ? el('span', { class: 'muted mono small', text: ' ' + a.key_id }) : null]),
          CR.td(CR.num(a.rows) + (tables ? ' (' + tables + ')' : '')), CR.td(a.opted_out ? 'yes' : 'no'), CR.td('#' + a.audit_seq, 'n'));
      }))) : el('p', { class: 'muted', test: 'data-no-access', text: 'No access request yet.' }));
    box.appendChild(el('p', { class: 'small' }, 'An access request answers what your partner holds for one person, across its tables (never whether they matched), ' +
      'to whoever asks; it blinds the identifier with your key, so it runs with ', cmd('cleanroom access-request --psi-key ' + co.id + '=KEYFILE IDENTIFIER'),
    '. It makes no receipt; the log records it, as listed here.'));
  }

  function drawTables(box, co, list, report) {
    var me = CR.me, mine = (list.tables || {})[me.partner_id] || [];
    if (!mine.length && list.audiences && list.audiences[me.partner_id]) mine = [list.audiences[me.partner_id]];
    CR.clear(box);
    if (!mine.length) {
      box.appendChild(el('p', { class: 'small', test: 'data-no-tables' }, 'No table uploaded yet. Blind and upload one here with your key (' +
        (co.state === 'active' ? 'the rules are approved' : 'once both partners approve the rules') + '):', el('br'),
      cmd('cleanroom upload --collab ' + co.id + ' --psi-key KEYFILE --id-column email' + (((co.rules || {}).tables || []).length ? ' --table NAME' : '') + ' FILE.csv')));
      return;
    }
    box.appendChild(el('div', { class: 'scroll' }, CR.table({ class: 'data', test: 'data-table-list', 'aria-label': 'Your tables in ' + (co.name || co.id) },
      ['Table', 'Uploaded', 'Rows', 'People', 'Can match', 'Columns'], mine.map(function (a) {
        var cols = Array.isArray(a.columns) ? a.columns.map(function (c) { return c && c.name; }).filter(Boolean) : [];
        return el('tr', { test: 'data-table', 'data-table': a.table || 'audience' },
          CR.td(el('code', { text: a.table || 'audience' })), CR.td(CR.time(a.created_at)),
          CR.td(CR.num(a.rows || 0), 'n'), CR.td(CR.num(a.people || 0), 'n'), CR.td(CR.num(a.people_matchable || 0), 'n'),
          CR.td(cols.join(', ') || '–', 'small'));
      }))));
    var held = (report.data_held || []).filter(function (h) { return h.partner_id === me.partner_id; })[0] || {};
    var mix = held.consent_rows_by_purpose || [];
    var purpose = (co.rules || {}).purpose;
    box.appendChild(mix.length ? el('div', { class: 'scroll' }, CR.table({ class: 'data', test: 'data-consent', 'aria-label': 'Consent mix in ' + (co.name || co.id) },
      ['Consent purpose', 'Rows (all your tables)'], mix.map(function (p) {
        return el('tr', null, CR.td([el('code', { text: p.purpose }), p.purpose === purpose ? ' ' : null, p.purpose === purpose ? el('span', { class: 'badge answered', text: 'this collaboration\'s' }) : null]),
          CR.td(CR.num(p.rows), 'n'));
      }))) : el('p', { class: 'small muted', test: 'data-consent', text: 'No consent column in your tables: nobody can match. Upload the table that carries consent with --consent-column.' }));
    box.appendChild(el('p', { class: 'small muted' }, 'People who can match carry the purpose ' + (purpose || '–') + ' and have not opted out. Replace a table with ',
      cmd('cleanroom upload --collab ' + co.id + ' --psi-key KEYFILE --replace …'), '.'));
  }

  // drawMatches lists the matches; a waiting one says whose half is
  // missing (GET .../matches/{mid}, from the caller's side).
  function drawMatches(box, co, ms, alive) {
    CR.clear(box);
    var run = el('p', { class: 'small' }, 'A match re-blinds the other partner\'s points with your key, on your machine, so it starts and runs with ',
      cmd('cleanroom match --collab ' + co.id + ' --psi-key KEYFILE'), ' (each partner\'s engineer runs it once).');
    if (!ms.length) {
      CR.append(box, [el('p', { class: 'muted', test: 'data-no-match', text: 'No match yet.' }), run]);
      return;
    }
    var note = el('p', { class: 'small', test: 'data-match-note', 'aria-live': 'polite' });
    box.appendChild(el('div', { class: 'scroll' }, CR.table({ class: 'data', test: 'data-match-list', 'aria-label': 'Matches in ' + (co.name || co.id) },
      ['Match', 'State', 'Noisy cohort size', 'ε', 'Started'], ms.map(function (m) {
        return el('tr', { test: 'data-match', 'data-state': m.state }, CR.td(m.id, 'mono small'), CR.td(el('span', { class: 'state ' + m.state, text: m.state })),
          CR.td(m.cohort_size_noisy === null || m.cohort_size_noisy === undefined ? '–' : CR.num(m.cohort_size_noisy), 'n'),
          CR.td(CR.eps(m.epsilon), 'n'), CR.td(CR.time(m.created_at)));
      }))));
    CR.append(box, [note, run]);
    var waiting = ms.filter(function (m) { return m.state === 'waiting'; })[0];
    if (!waiting) {
      note.textContent = 'The cohort size is noisy (Laplace, the rule match_epsilon): the only size either partner sees.';
      return;
    }
    return CR.api('GET', '/v1/collaborations/' + encodeURIComponent(co.id) + '/matches/' + encodeURIComponent(waiting.id)).then(function (m) {
      if (!alive()) return;
      note.textContent = 'Match ' + m.id + ' is waiting: ' + (m.your_half_received ? 'your half is in; the other partner\'s engineer has yet to run cleanroom match.' :
        'your half is not in yet: run the command below.');
    });
  }

  function drawReceipts(box, co, rs, honoured, verify) {
    CR.clear(box);
    var took = {};
    honoured.forEach(function (h) { took[h.receipt_id] = h; });
    var tell = el('p', { class: 'small' }, 'Delete people with ', cmd('cleanroom delete --collab ' + co.id + ' --psi-key KEYFILE IDENTIFIER…'),
      ', opt them out of every collaboration with ', cmd('cleanroom optout --psi-key ' + co.id + '=KEYFILE IDENTIFIER…'), '; each prints its signed receipt, listed here.');
    if (!rs.length) {
      CR.append(box, [el('p', { class: 'muted', test: 'data-no-receipts', text: 'No deletion or opt-out yet.' }), tell]);
      return;
    }
    rs = rs.slice().sort(function (a, b) { return a.at < b.at ? 1 : a.at > b.at ? -1 : 0; });
    box.appendChild(el('div', { class: 'scroll' }, CR.table({ class: 'data', test: 'receipt-list', 'aria-label': 'Deletion receipts in ' + (co.name || co.id) },
      ['Kind', 'At', 'Identifiers', 'Rows deleted', 'Tokens', 'Took', 'Receipt'], rs.map(function (r) {
        var rows = r.table_rows && Object.keys(r.table_rows).length ? Object.keys(r.table_rows).sort().map(function (t) { return t + ' ' + CR.num(r.table_rows[t]); }).join(', ') : CR.num(r.audience_rows);
        var json = JSON.stringify(r, null, 2) + '\n';
        var file = 'receipt-' + r.id + '.json';
        return el('tr', { test: 'receipt-item', 'data-id': r.id, 'data-kind': r.kind },
          CR.td(el('span', { class: 'badge', text: kinds[r.kind] || r.kind })), CR.td(CR.time(r.at)),
          CR.td(r.identifiers ? CR.num(r.identifiers) : '–', 'n'), CR.td(rows), CR.td(CR.num(r.tokens), 'n'),
          CR.td(took[r.id] ? took[r.id].took || CR.duration(took[r.id].seconds) : '–'),
          CR.td(el('div', { class: 'toolbar tight' },
            el('a', { class: 'button', test: 'receipt-download', download: file, href: URL.createObjectURL(new Blob([json], { type: 'application/json' })),
              'aria-label': 'Download receipt ' + r.id, text: 'Download' }),
            el('button', { type: 'button', test: 'receipt-verify', 'aria-label': 'Verify receipt ' + r.id, text: 'Verify', onclick: function () { verify.run(json, r.id); } }),
            el('span', { class: 'mono small', text: r.id }))));
      }))));
    box.appendChild(tell);
  }

  // verifyCard checks a receipt's signature in the page (CR.verifyReceipt,
  // verify.js), as cleanroom receipt verify does: pasted, picked from a
  // file, or one of the list's.
  function verifyCard() {
    var text = el('textarea', { id: 'receipt-text', test: 'receipt-text', rows: '6', spellcheck: 'false', placeholder: '{"id": "…", "kind": "identifiers", …, "signature": "…"}' });
    var pub = el('input', { id: 'receipt-pubkey', test: 'receipt-pubkey', spellcheck: 'false', placeholder: 'cleanroom-audit-ed25519:… (empty: ask the server)' });
    var file = el('input', { type: 'file', id: 'receipt-file', test: 'receipt-file', accept: '.json,application/json' });
    var result = el('div', { class: 'verify-result', test: 'receipt-result', 'aria-live': 'polite' });
    file.addEventListener('change', function () {
      var f = file.files && file.files[0];
      if (!f) return;
      f.text().then(function (t) {
        text.value = t;
        check(t, f.name);
      });
      file.value = '';
    });
    var card = el('section', { class: 'card', test: 'receipt-verify-card', id: 'verify-receipt' },
      el('h3', { text: 'Verify a receipt' }),
      el('p', { class: 'small muted', text: 'Checks the server\'s Ed25519 signature on a deletion receipt, here in the page, as cleanroom receipt verify does: ' +
        'an altered receipt fails. Whether the audit log records it at the stated entry is checked against a verified export, by an auditor (cleanroom receipt verify --log).' }),
      el('label', { for: 'receipt-text', text: 'Receipt (JSON)' }), text,
      el('label', { for: 'receipt-pubkey', text: 'Server\'s public key' }), pub,
      el('p', { class: 'small muted', text: 'A key the server gives proves only that the server signed; paste the key you got another way (cleanroom audit pubkey) to trust nothing it says.' }),
      el('div', { class: 'toolbar' },
        el('button', { type: 'button', class: 'primary', test: 'receipt-check', text: 'Verify', onclick: function () { check(text.value, null); } }),
        el('label', { class: 'button', for: 'receipt-file', text: 'Verify a file…' }), file),
      result);

    async function check(json, from) {
      result.removeAttribute('data-ok');
      result.className = 'verify-result';
      if (!json.trim()) {
        result.textContent = 'Paste a receipt, pick its file, or press Verify beside one above.';
        return;
      }
      result.textContent = 'Verifying…';
      try {
        var key = pub.value.trim(), keyFrom = 'pasted';
        if (!key) {
          key = (await CR.api('GET', '/v1/audit/pubkey')).public_key;
          keyFrom = 'from the server';
        }
        await CR.load(['verify.js']);
        var r = await CR.verifyReceipt(json, key);
        var rc = r.receipt || {};
        result.setAttribute('data-ok', r.ok ? 'true' : 'false');
        result.className = 'verify-result ' + (r.ok ? 'ok' : 'bad');
        CR.clear(result);
        CR.append(result, [
          el('strong', { text: r.ok ? 'OK' : 'FAILED' }), ': ',
          r.ok ? 'receipt ' + rc.id + ': ' + (kinds[rc.kind] || rc.kind) + ', ' + CR.plural(rc.audience_rows || 0, 'row') + ' and ' + CR.plural(rc.tokens || 0, 'token') +
            ' deleted at ' + CR.time(rc.at) + ', recorded at log entry #' + rc.audit_seq + '; signed by the server.' : r.error,
          el('div', { class: 'small muted', text: (from || 'pasted receipt') + ', key ' + keyFrom + ': ' + key })
        ]);
      } catch (e) {
        if (e.status === 401) return;
        result.setAttribute('data-ok', 'false');
        result.className = 'verify-result bad';
        CR.clear(result).appendChild(CR.errorBox(e));
      }
    }

    return {
      card: card,
      run: function (json, id) {
        text.value = json;
        card.scrollIntoView({ block: 'start' });
        check(json, 'receipt ' + id + ' from the list');
      }
    };
  }
})();
