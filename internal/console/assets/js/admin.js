// The operator's partners (#/partners) and an admin's keys (#/keys),
// through the routes `cleanroom partners` and `cleanroom keys` call. A new
// key's secret is shown once, with a copy button, and never kept: the
// server stores only its hash, and the page forgets it when the view goes.
(function () {
  'use strict';
  var CR = window.CR, el = CR.el;

  // secretOnce shows a new key's secret in a read-only field with a copy
  // button, and says it will not be shown again.
  CR.secretOnce = function (secret, what, advice, lost) {
    var id = 'secret-' + Math.random().toString(36).slice(2);
    var field = el('input', { id: id, class: 'mono secret', test: 'secret', readonly: true, value: secret, spellcheck: 'false', autocomplete: 'off' });
    var status = el('span', { class: 'small muted', test: 'copy-status', role: 'status', 'aria-live': 'polite' });
    var copy = el('button', { type: 'button', class: 'primary', test: 'copy-secret', text: 'Copy', onclick: function () { copyField(field, status); } });
    return el('div', { class: 'secret-once', test: 'secret-once', role: 'region', 'aria-label': 'New secret' },
      el('p', null, el('strong', { text: 'Copy ' + what + ' now: it is shown this once and will not be shown again.' }),
        ' The server keeps only its hash' + (lost ? '; ' + lost : '.')),
      el('label', { for: id, text: 'Secret' }),
      el('div', { class: 'secret-row' }, field, copy), status,
      advice ? el('p', { class: 'small', test: 'secret-advice', text: advice }) : null);
  };

  // copyField puts a field's value on the clipboard; where the browser
  // refuses (no permission, not focused), the value is left selected for
  // Ctrl+C.
  function copyField(field, status) {
    field.focus();
    field.select();
    var done = function () { status.textContent = 'Copied to the clipboard.'; };
    var fallback = function () {
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      if (ok) done();
      else status.textContent = 'The browser would not copy it: the secret is selected, press Ctrl+C (⌘C on a Mac).';
    };
    if (!navigator.clipboard || !navigator.clipboard.writeText) return fallback();
    // A browser may leave the promise pending (a permission prompt, a
    // tab without focus): after a second the selection is the answer.
    var settled = false;
    var once = function (f) { return function () { if (!settled) { settled = true; f(); } }; };
    navigator.clipboard.writeText(field.value).then(once(done), once(fallback));
    setTimeout(once(fallback), 1000);
  }

  // ---- The operator's partners ----

  CR.partnersView = function (app, alive) {
    var list = el('section', { class: 'card', test: 'partners' }, el('h2', { text: 'Partners' }), el('p', { class: 'muted', text: 'Loading…' }));
    var name = el('input', { id: 'partner-name', test: 'partner-name', required: true, maxlength: '100', autocomplete: 'off' });
    var out = el('div', { 'aria-live': 'polite' });
    var submit = el('button', { type: 'submit', class: 'primary', test: 'partner-create', text: 'Create partner' });
    var form = el('form', { class: 'card form', test: 'partner-form', onsubmit: create },
      el('h3', { text: 'Create a partner' }),
      el('p', { class: 'small muted', text: 'A company that takes part in collaborations. It gets a first admin key, whose secret you hand to its admin; ' +
        'every later key is that admin\'s business (cleanroom partners create does the same).' }),
      el('label', { for: 'partner-name', text: 'Name' }),
      el('div', { class: 'toolbar' }, name, submit),
      el('p', { class: 'small muted', text: 'Up to 100 letters, digits, spaces or . _ & \' -; no two partners share a name.' }),
      out);
    CR.append(app, [list, form]);
    load();

    function load() {
      CR.guard(alive, list, CR.api('GET', '/v1/partners').then(function (l) {
        if (!alive()) return;
        var ps = l.partners || [];
        CR.clear(list).appendChild(el('h2', { text: 'Partners' }));
        if (!ps.length) {
          list.appendChild(el('p', { class: 'muted', test: 'partner-list', text: 'No partner yet: create the first below, then give its admin key to its admin.' }));
          return;
        }
        list.appendChild(el('div', { class: 'scroll' }, CR.table({ class: 'data', test: 'partner-list', 'aria-label': 'Partners' }, ['Name', 'Partner ID', 'Created'],
          ps.map(function (p) {
            return el('tr', { test: 'partner-item', 'data-id': p.id }, CR.td(el('strong', { text: p.name })), CR.td(p.id, 'mono'), CR.td(CR.time(p.created_at)));
          }))));
      }));
    }

    function create(ev) {
      ev.preventDefault();
      var n = name.value.trim();
      CR.clear(out);
      if (!n) {
        out.appendChild(CR.errorBox({ code: 'invalid', message: 'give the partner a name', plain: true }, 'partner-error'));
        return;
      }
      submit.disabled = true;
      CR.api('POST', '/v1/partners', { body: { name: n } }).then(function (r) {
        if (!alive()) return;
        name.value = '';
        CR.append(out, [
          el('p', { test: 'partner-created' }, 'Created ', el('strong', { text: r.partner.name }), ' (', el('span', { class: 'mono', text: r.partner.id }),
            ') with its first admin key ', el('span', { class: 'mono', text: r.admin_key.id }), '.'),
          CR.secretOnce(r.secret, 'the admin key\'s secret', r.rotate)
        ]);
        load();
      }, function (e) {
        if (e.status !== 401 && alive()) out.appendChild(CR.errorBox(e, 'partner-error'));
      }).then(function () { submit.disabled = false; });
    }
  };

  // ---- An admin's keys ----

  var roles = [
    ['engineer', 'engineer: uploads tables, runs matches, deletions and opt-outs'],
    ['analyst', 'analyst: asks questions of cohorts'],
    ['auditor', 'auditor: reads the audit log and reports'],
    ['admin', 'admin: keys, collaborations and their rules']
  ];

  CR.keysView = function (app, alive) {
    var me = CR.me, base = '/v1/partners/' + encodeURIComponent(me.partner_id) + '/keys';
    var list = el('section', { class: 'card', test: 'keys' }, el('h2', { text: 'API keys' }), el('p', { class: 'muted', text: 'Loading…' }));
    var label = el('input', { id: 'key-label', test: 'key-label', maxlength: '200', autocomplete: 'off', placeholder: 'e.g. nightly upload job' });
    var role = el('select', { id: 'key-role', test: 'key-role' }, roles.map(function (r) { return el('option', { value: r[0], text: r[1] }); }));
    var out = el('div', { 'aria-live': 'polite' }), shown = null; // the key whose secret out shows
    var submit = el('button', { type: 'submit', class: 'primary', test: 'key-create', text: 'Create key' });
    var form = el('form', { class: 'card form', test: 'key-form', onsubmit: create },
      el('h3', { text: 'Create a key' }),
      el('p', { class: 'small muted', text: 'One key per person or job, labelled so the audit log says who did what (cleanroom keys create does the same).' }),
      el('div', { class: 'form-grid' },
        el('label', { for: 'key-label', text: 'Label' }), label,
        el('label', { for: 'key-role', text: 'Role' }), role),
      el('div', { class: 'toolbar' }, submit),
      out);
    CR.append(app, [list, form]);
    load();

    function load() {
      CR.guard(alive, list, CR.api('GET', base).then(function (l) {
        if (!alive()) return;
        draw(l.keys || []);
      }));
    }

    function draw(keys) {
      CR.clear(list);
      CR.append(list, [
        el('h2', { text: 'API keys' }),
        el('p', { class: 'small muted', text: 'Keys of ' + (me.partner_name || me.partner_id) + '. Secrets are never shown again after a key is made; revoking a key stops it at once.' })
      ]);
      var active = keys.filter(function (k) { return !k.revoked_at; }), revoked = keys.filter(function (k) { return k.revoked_at; });
      list.appendChild(el('div', { class: 'scroll' }, CR.table({ class: 'data', test: 'key-list', 'aria-label': 'API keys' }, ['Label', 'Role', 'Key ID', 'Created', 'State', 'Action'],
        active.concat(revoked).map(row))));
    }

    function row(k) {
      var mine = k.id === me.key_id;
      var msg = el('div', { 'aria-live': 'polite' });
      var cell = el('td', { class: 'actions' });
      var tr = el('tr', { test: 'key-item', 'data-id': k.id, 'data-role': k.role, class: k.revoked_at ? 'revoked' : '' },
        CR.td([k.label ? el('span', { text: k.label }) : el('span', { class: 'muted', text: '(no label)' }), mine ? el('span', { class: 'badge', text: 'you' }) : null]),
        CR.td(k.role), CR.td(k.id, 'mono small'), CR.td(CR.time(k.created_at)),
        CR.td(k.revoked_at ? el('span', { class: 'state deleted', text: 'revoked ' + CR.time(k.revoked_at) }) : el('span', { class: 'state active', text: 'active' })),
        cell);
      if (!k.revoked_at) ask();
      return tr;

      // ask offers Revoke; confirm asks again in the row, saying what it
      // does, before anything is sent.
      function ask() {
        CR.clear(cell).appendChild(el('button', { type: 'button', test: 'key-revoke', text: 'Revoke', 'aria-label': 'Revoke ' + (k.label || k.id), onclick: confirm }));
        cell.appendChild(msg);
      }
      function confirm() {
        CR.clear(msg);
        var yes = el('button', { type: 'button', class: 'danger', test: 'key-revoke-confirm', text: 'Revoke it', onclick: revoke });
        CR.append(CR.clear(cell), [
          el('p', { class: 'small confirm', test: 'key-revoke-question', text: 'Revoke ' + (k.label || k.id) + '? Whoever uses it is refused from now on' +
            (mine ? '; it is the key you are signed in with, so you will be signed out.' : '.') }),
          el('div', { class: 'toolbar' }, yes, el('button', { type: 'button', test: 'key-revoke-cancel', text: 'Cancel', onclick: ask })),
          msg
        ]);
        yes.focus();
      }
      function revoke(ev) {
        ev.target.disabled = true;
        CR.api('DELETE', base + '/' + encodeURIComponent(k.id)).then(function () {
          if (!alive()) return;
          if (mine) return CR.signOut({ code: 'revoked', message: 'You revoked the key you were signed in with. Sign in with another key.', plain: true });
          if (shown === k.id) CR.clear(out); // a revoked key's secret is of no use
          load();
        }, function (e) {
          if (e.status === 401 || !alive()) return;
          ask();
          if (e.code === 'last_admin_key') {
            e = { code: e.code, plain: true, message: 'This is your partner\'s last admin key, so it cannot be revoked: without it nobody could manage your keys, ' +
              'and the operator makes only a partner\'s first key. Create another admin key first, sign in with it, then revoke this one.' };
          }
          msg.appendChild(CR.errorBox(e, 'key-error'));
        });
      }
    }

    function create(ev) {
      ev.preventDefault();
      CR.clear(out);
      submit.disabled = true;
      CR.api('POST', base, { body: { role: role.value, label: label.value.trim() } }).then(function (r) {
        if (!alive()) return;
        label.value = '';
        shown = r.key.id;
        CR.append(out, [
          el('p', { test: 'key-created' }, 'Created the ' + r.key.role + ' key ', el('strong', { text: r.key.label || r.key.id }), ' (', el('span', { class: 'mono', text: r.key.id }), ').'),
          CR.secretOnce(r.secret, 'its secret', null, 'if it is lost, create a new key and revoke this one.')
        ]);
        load();
      }, function (e) {
        if (e.status !== 401 && alive()) out.appendChild(CR.errorBox(e, 'key-error'));
      }).then(function () { submit.disabled = false; });
    }
  };
})();
