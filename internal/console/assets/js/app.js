// The console's shell: sign-in, the top bar, and hash routes
// (#/collabs, #/collab/new, #/collab/ID/workbench|collab|report|rules,
// #/audit, #/privacy, and each role's own: #/partners, #/keys, #/data).
// Each view asks the API only what the signed-in role may ask (CR.can),
// and shows nothing else.
(function () {
  'use strict';
  var CR = window.CR, el = CR.el;
  var top = document.getElementById('top'), app = document.getElementById('app');
  var generation = 0;
  // meName keeps GET /v1/me beside the key: a key's role and partner never
  // change, so a reload shows its view without asking again first.
  var meName = 'cleanroom.me';

  // alive tells a view whether the page still shows it: an answer that
  // arrives after the user moved on is dropped.
  function view() {
    var g = ++generation;
    CR.online(); // a view drawn afresh is not out of date; a failure says so again
    if (CR.disposeCharts) CR.disposeCharts(); // charts.js, once a view has drawn a chart
    CR.clear(app);
    return function () { return g === generation; };
  }

  CR.signOut = function (err) {
    sessionStorage.removeItem(CR.keyName);
    sessionStorage.removeItem(meName);
    CR.key = null;
    CR.me = null;
    renderTop();
    signIn(err);
  };

  function signIn(err) {
    view();
    var key = el('input', { type: 'password', id: 'signin-key', test: 'signin-key', autocomplete: 'off', spellcheck: 'false', placeholder: 'crk_…', required: true });
    var msg = el('div', { class: 'signin-msg' }, err ? CR.errorBox(err, 'signin-error') : null);
    var form = el('form', { class: 'signin card', onsubmit: submit },
      el('h2', { text: 'Sign in' }),
      el('p', { class: 'muted', text: 'Paste an API key. It stays in this tab only (session storage) and goes to the server as a bearer token; closing the tab forgets it.' }),
      el('label', { for: 'signin-key', text: 'API key' }), key,
      el('button', { type: 'submit', class: 'primary', test: 'signin-submit', text: 'Sign in' }),
      msg);
    app.appendChild(form);
    key.focus();

    async function submit(ev) {
      ev.preventDefault(); // the CSP allows no form submission, and none is needed
      var k = key.value.trim();
      CR.clear(msg);
      if (!k) {
        msg.appendChild(CR.errorBox({ code: 'invalid', message: 'paste an API key first' }, 'signin-error'));
        return;
      }
      try {
        var me = await CR.api('GET', '/v1/me', { key: k });
        sessionStorage.setItem(CR.keyName, k);
        sessionStorage.setItem(meName, JSON.stringify(me));
        CR.key = k;
        CR.me = me;
        renderTop();
        if (!location.hash || location.hash === '#/' || location.hash === '#/signin') location.hash = '#/collabs';
        else route();
      } catch (e) {
        msg.appendChild(CR.errorBox(e, 'signin-error'));
      }
    }
  }

  function renderTop() {
    CR.clear(top);
    if (!CR.me) { top.hidden = true; return; }
    top.hidden = false;
    var me = CR.me;
    var nav = el('nav', { class: 'nav' },
      el('a', { href: '#/collabs', test: 'nav-collabs', text: 'Collaborations' }),
      CR.can('audit') ? el('a', { href: '#/audit', test: 'nav-audit', text: 'Audit log' }) : null,
      CR.can('privacy') ? el('a', { href: '#/privacy', test: 'nav-privacy', text: 'Privacy report' }) : null,
      roleLinks());
    // On a phone the links and who is signed in fold behind Menu; Sign
    // out stays in the bar.
    var menu = el('button', { type: 'button', class: 'menu-toggle', test: 'menu', 'aria-expanded': 'false', 'aria-controls': 'top-menu', text: 'Menu',
      onclick: function () { openMenu(menu.getAttribute('aria-expanded') !== 'true'); } });
    CR.append(top, [
      el('a', { class: 'brand', href: '#/collabs', text: 'cleanroom' }),
      menu,
      el('div', { class: 'top-menu', id: 'top-menu' }, nav,
        el('span', { class: 'whoami', test: 'whoami', title: 'key ' + me.key_id },
          el('strong', { text: me.operator ? 'operator' : me.role }), ' · ', me.partner_name || me.partner_id,
          me.label ? el('span', { class: 'muted', text: ' · ' + me.label }) : null)),
      el('button', { type: 'button', class: 'link signout', test: 'signout', text: 'Sign out', onclick: function () { location.hash = ''; CR.signOut(); } })
    ]);
    markNav();
  }
  function openMenu(open) {
    top.classList.toggle('open', open);
    var m = top.querySelector('.menu-toggle');
    if (m) m.setAttribute('aria-expanded', String(open));
  }
  function markNav() {
    var h = location.hash;
    top.querySelectorAll('.nav a').forEach(function (a) {
      var t = a.getAttribute('href');
      a.classList.toggle('active', h.indexOf(t) === 0 || (t === '#/collabs' && h.indexOf('#/collab/') === 0));
    });
  }

  // notAllowed is what a route the role may not use shows, asking nothing.
  function notAllowed(what) {
    app.appendChild(el('p', { class: 'card muted', text: 'A key with role ' + CR.role() + ' cannot see ' + what + '.' }));
  }

  function route() {
    if (!CR.key) return signIn();
    openMenu(false);
    markNav();
    // A view's own state may follow a '?' (#/audit?action=query).
    var parts = location.hash.replace(/^#\/?/, '').split('?')[0].split('/').map(decodeURIComponent);
    switch (parts[0]) {
      case 'collab':
        return collab(parts[1], parts[2]);
      case 'audit': {
        var alive = view();
        if (!CR.can('audit')) return notAllowed('the audit log');
        return CR.auditView(app, alive);
      }
      case 'privacy':
        return privacy();
      case 'partners':
      case 'keys':
      case 'data':
        return rolePage(parts[0]);
      default:
        return collabs();
    }
  }
  CR.route = route;

  // guard shows a failed request's error in box, unless the view is gone
  // or the failure signed out.
  function guard(alive, box, p) {
    return p.catch(function (e) {
      if (!alive() || e.status === 401) return;
      // The server gone: what the box already shows stays, marked out of
      // date by the banner; only a box still loading says it did not load.
      if (e.code === 'network' && box.textContent.trim() && box.textContent.indexOf('Loading') < 0) return;
      CR.clear(box).appendChild(CR.errorBox(e));
      if (!(e instanceof CR.APIError)) throw e; // a bug, or a script that did not load: the console says so too
    });
  }
  CR.guard = guard;

  // The pages of one role each (admin.js, engineer.js): the links the
  // signed-in role has, and the page, once its script is loaded.
  var rolePages = {
    partners: { can: 'managePartners', nav: 'Partners', what: 'the partners', script: 'admin.js', draw: 'partnersView' },
    keys: { can: 'keys', nav: 'Keys', what: 'the keys', script: 'admin.js', draw: 'keysView' },
    data: { can: 'data', nav: 'Your data', what: 'the data page', script: 'engineer.js', draw: 'dataView' }
  };
  function roleLinks() {
    return Object.keys(rolePages).filter(function (k) { return CR.can(rolePages[k].can); }).map(function (k) {
      return el('a', { href: '#/' + k, test: 'nav-' + k, text: rolePages[k].nav });
    });
  }
  function rolePage(name) {
    var alive = view(), p = rolePages[name];
    if (!CR.can(p.can)) return notAllowed(p.what);
    var wait = el('p', { class: 'muted', text: 'Loading…' });
    app.appendChild(wait);
    guard(alive, wait, CR.load([p.script]).then(function () {
      if (!alive()) return;
      app.removeChild(wait);
      CR[p.draw](app, alive);
    }));
  }

  // The rules form (rulesform.js) proposes collaborations.
  CR.proposeHref = '#/collab/new';

  // nextStep says what to do when there is no collaboration yet, for the
  // signed-in role: an admin proposes one, through the console's form
  // when one is served (CR.proposeHref) or the command line.
  function nextStep() {
    var role = CR.role();
    if (role === 'admin') {
      return CR.proposeHref ?
        ['No collaboration yet: ', el('a', { href: CR.proposeHref, test: 'propose-link', text: 'propose one' }), ' with a partner, or wait for one proposed to you.'] :
        ['No collaboration yet: propose one with a partner (', el('code', { text: 'cleanroom collab propose --name NAME --partner PARTNER --rules rules.json' }), '), or wait for one proposed to you.'];
    }
    if (role === 'operator') return 'No collaboration yet: partners\' admins propose them. Create partners under Partners.';
    return 'No collaboration yet: your admin proposes one, or approves one proposed by another partner.';
  }

  function collabs() {
    var alive = view();
    var box = el('section', { class: 'card' }, el('h2', { text: 'Collaborations' }), el('p', { class: 'muted', text: 'Loading…' }));
    app.appendChild(box);
    guard(alive, box, CR.api('GET', '/v1/collaborations').then(function (list) {
      if (!alive()) return;
      var cs = list.collaborations || [];
      CR.clear(box).appendChild(el('h2', { text: 'Collaborations' }));
      if (!cs.length) {
        box.appendChild(el('p', { class: 'muted', test: 'collab-list' }, nextStep()));
        return;
      }
      // An admin proposes more from here, with the rules form.
      if (CR.can('approve')) box.appendChild(el('div', { class: 'toolbar' }, el('a', { class: 'button', href: CR.proposeHref, test: 'new-collab', text: 'Propose a collaboration' })));
      box.appendChild(CR.table({ class: 'data clickable', test: 'collab-list' }, ['Name', 'Partners', 'State', 'Purpose', 'Rules', 'Updated'],
        cs.map(function (c) {
          var open = function () { location.hash = '#/collab/' + encodeURIComponent(c.id) + '/' + (CR.can('query') ? 'workbench' : 'collab'); };
          return el('tr', { test: 'collab-item', 'data-id': c.id, tabindex: '0', onclick: open, onkeydown: function (e) { if (e.key === 'Enter') open(); } },
            CR.td(el('strong', { text: c.name || c.id })), CR.td((c.proposer_name || c.proposer) + ' × ' + (c.partner_name || c.partner)),
            CR.td(el('span', { class: 'state ' + c.state, text: c.state })), CR.td((c.rules || {}).purpose || '–'),
            CR.td('v' + c.rules_version, 'n'), CR.td(CR.time(c.updated_at)));
        })));
    }));
  }

  function collab(id, tab) {
    var alive = view();
    if (!id) return collabs();
    if (id === 'new') { // the rules form, proposing
      var form = el('div', null, el('p', { class: 'muted', text: 'Loading…' }));
      app.appendChild(form);
      return guard(alive, form, CR.load(['rules.js', 'rulesjson.js', 'rulesform.js']).then(function () { return alive() && CR.rulesForm(form, null, alive); }));
    }
    tab = tab || (CR.can('query') ? 'workbench' : 'collab');
    var tabs = [['workbench', 'Workbench', CR.can('query')], ['collab', 'Collaboration', CR.can('collabs')], ['report', 'Transparency report', CR.can('collabs')]];
    var head = el('header', { class: 'collab-head' }, el('h2', { text: '…' }));
    var bar = el('nav', { class: 'tabs' }, tabs.filter(function (t) { return t[2]; }).map(function (t) {
      return el('a', { href: '#/collab/' + encodeURIComponent(id) + '/' + t[0], test: 'tab-' + t[0], class: t[0] === tab ? 'active' : '', text: t[1] });
    }));
    var panel = el('div', { class: 'panel' }, el('p', { class: 'muted', text: 'Loading…' }));
    CR.append(app, [head, bar, panel]);
    var scripts = { workbench: ['charts.js', 'workbench.js'], report: ['charts.js', 'report.js'], rules: ['rules.js', 'rulesjson.js', 'rulesform.js'] }[tab] ||
      ['charts.js', 'report.js', 'rules.js', 'collab.js'];
    guard(alive, panel, Promise.all([CR.api('GET', '/v1/collaborations/' + encodeURIComponent(id)), CR.load(scripts)]).then(function (x) {
      var co = x[0];
      if (!alive()) return;
      CR.clear(head);
      CR.append(head, [
        el('h2', null, co.name || co.id, ' ', el('span', { class: 'state ' + co.state, text: co.state })),
        el('p', { class: 'muted' }, (co.proposer_name || co.proposer) + ' × ' + (co.partner_name || co.partner) + ' · purpose ' +
          (co.rules || {}).purpose + ' · rules v' + co.rules_version + ' · ', el('span', { class: 'mono', text: co.id }))
      ]);
      if (tab === 'workbench' && CR.can('query')) return CR.workbench(panel, co, alive);
      if (tab === 'report') return report(panel, co, alive);
      if (tab === 'rules') return CR.rulesForm(panel, co, alive);
      return CR.collabView(panel, co, alive);
    }));
  }

  function report(panel, co, alive) {
    return CR.api('GET', '/v1/collaborations/' + encodeURIComponent(co.id) + '/report').then(function (r) {
      if (!alive()) return;
      CR.clear(panel);
      var body = el('div');
      CR.append(panel, [printBar('This report prints on paper, or save it as PDF from the print dialog. cleanroom report --format html -o report.html saves it as one self-contained page.'), body]);
      CR.renderReport(body, r);
    });
  }

  function printBar(note) {
    return el('div', { class: 'toolbar noprint' },
      el('button', { test: 'print', text: 'Print', onclick: function () { window.print(); } }),
      el('span', { class: 'muted small', text: note }));
  }
  CR.printBar = printBar;

  // privacy is the public privacy report of the key's partner (any
  // partner's, picked from the list, for the operator).
  function privacy() {
    var alive = view();
    if (!CR.can('privacy')) return notAllowed('the privacy report');
    var since = el('input', { type: 'date', test: 'privacy-since', id: 'privacy-since' });
    var until = el('input', { type: 'date', test: 'privacy-until', id: 'privacy-until' });
    var partner = null;
    var body = el('div', null, el('p', { class: 'muted', text: 'Loading…' }));
    var form = el('form', { class: 'toolbar noprint', onsubmit: function (e) { e.preventDefault(); load(true); } },
      el('label', { for: 'privacy-since', text: 'From' }), since,
      el('label', { for: 'privacy-until', text: 'to' }), until,
      el('button', { type: 'submit', test: 'privacy-apply', text: 'Show' }),
      el('button', { type: 'button', test: 'print', text: 'Print', onclick: function () { window.print(); } }),
      el('span', { class: 'muted small', text: 'For the brand\'s customers: print it, or publish the page cleanroom privacy-report --format html makes.' }));
    CR.append(app, [form, body]);
    if (CR.me.operator) {
      partner = el('select', { 'aria-label': 'Partner' });
      form.insertBefore(partner, form.firstChild);
      partner.addEventListener('change', function () { load(true); });
      guard(alive, body, CR.api('GET', '/v1/partners').then(function (l) {
        if (!alive()) return;
        (l.partners || []).forEach(function (p) { partner.appendChild(el('option', { value: p.id, text: p.name })); });
        if (partner.options.length) load(false);
        else CR.clear(body).appendChild(el('p', { class: 'muted', text: 'No partner yet.' }));
      }));
    } else {
      load(false);
    }

    function load(withDates) {
      var pid = partner ? partner.value : CR.me.partner_id;
      var q = {};
      if (withDates) {
        if (since.value) q.since = since.value + 'T00:00:00Z';
        // The day picked is included: the report runs to the next midnight.
        if (until.value) q.until = new Date(Date.parse(until.value + 'T00:00:00Z') + 86400000).toISOString().replace('.000Z', 'Z');
      }
      guard(alive, body, Promise.all([CR.api('GET', '/v1/partners/' + encodeURIComponent(pid) + '/privacy-report', { query: q }),
        CR.load(['charts.js', 'report.js'])]).then(function (x) {
        var p = x[0];
        if (!alive()) return;
        since.value = CR.date(p.since);
        until.value = CR.date(new Date(Date.parse(p.until) - 1).toISOString());
        CR.disposeCharts();
        CR.renderPrivacy(body, p);
      }));
    }
  }

  window.addEventListener('hashchange', route);

  // On a phone tables read as cards, each cell under its column's name:
  // every data table the views draw, whichever script drew it, gets its
  // cells labelled from its header (the CSS shows the labels at 600 px
  // and less).
  function labelCells() {
    app.querySelectorAll('table.data').forEach(function (t) {
      var head = [].map.call(t.querySelectorAll('thead th'), function (th) { return th.textContent.trim(); });
      if (!head.length) return;
      t.querySelectorAll('tbody tr').forEach(function (tr) {
        [].forEach.call(tr.children, function (td, i) {
          if (head[i] && !td.hasAttribute('data-label')) td.setAttribute('data-label', head[i]);
        });
      });
    });
  }
  var labelling = false;
  new MutationObserver(function () {
    if (labelling) return;
    labelling = true;
    requestAnimationFrame(function () { labelling = false; labelCells(); });
  }).observe(app, { childList: true, subtree: true });

  // Start: a key kept in this tab signs in again by itself.
  CR.key = sessionStorage.getItem(CR.keyName);
  try {
    CR.me = JSON.parse(sessionStorage.getItem(meName));
  } catch (e) {
    CR.me = null;
  }
  if (!CR.key) {
    renderTop();
    signIn();
  } else if (CR.me) {
    renderTop();
    route();
  } else {
    CR.api('GET', '/v1/me').then(function (me) {
      CR.me = me;
      sessionStorage.setItem(meName, JSON.stringify(me));
      renderTop();
      route();
    }, function (e) {
      if (e.status !== 401) CR.signOut(e);
    });
  }
})();
