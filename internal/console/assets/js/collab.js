// The collaboration, for engineers and admins (and readable by every
// role): its rules, with the change awaiting approval beside the rules in
// force, and the tables they declare; each partner's tables with their
// columns' roles (sizes of the reader's own only) and consent mix;
// matches; and deletion receipts with how long each took.
(function () {
  'use strict';
  var CR = window.CR, el = CR.el;

  var ruleOrder = ['purpose', 'id_type', 'gmail_rule', 'dimensions', 'metrics', 'queriers', 'min_cohort_users', 'min_group_users',
    'epsilon_budget', 'delta_budget', 'delta', 'min_query_epsilon', 'max_query_epsilon', 'default_query_epsilon', 'budget_refresh', 'noise',
    'max_groups_contributed', 'min_upload_users', 'match_epsilon', 'public_groups', 'tables'];

  // canon is v as JSON with sorted keys: two equal rules compare alike.
  function canon(v) {
    if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']';
    if (v && typeof v === 'object') {
      return '{' + Object.keys(v).sort().map(function (k) { return JSON.stringify(k) + ':' + canon(v[k]); }).join(',') + '}';
    }
    return JSON.stringify(v === undefined ? null : v);
  }

  // pidOf is the partner ID of a rules party (proposer or partner).
  function pidOf(co, party) { return party === 'proposer' ? co.proposer : co.partner; }
  function partyOf(co, pid) { return pid === co.proposer ? 'proposer' : 'partner'; }
  // roleText says a declared column's role, a metric's with its bounds.
  function roleText(c) {
    if (!c) return '–';
    return c.role === 'metric' && c.bounds ? 'metric [' + CR.num(c.bounds[0]) + ', ' + CR.num(c.bounds[1]) + ']' : String(c.role);
  }
  function boundsText(c) { return c && c.bounds ? '[' + CR.num(c.bounds[0]) + ', ' + CR.num(c.bounds[1]) + ']' : '–'; }
  // tablesText is the rule tables in a line: each party's table names.
  function tablesText(co, names, ts) {
    if (!ts || !ts.length) return '(none: each partner has one table, named audience)';
    return ['proposer', 'partner'].map(function (party) {
      var mine = ts.filter(function (t) { return t.party === party; }).map(function (t) { return t.name; });
      return mine.length ? names(pidOf(co, party)) + ': ' + mine.join(', ') : null;
    }).filter(Boolean).join('; ');
  }
  // captioned is CR.table with a caption, which names the table for
  // screen readers too.
  function captioned(props, caption, head, rows) {
    var t = CR.table(props, head, rows);
    t.insertBefore(el('caption', null, caption), t.firstChild);
    return el('div', { class: 'scroll' }, t);
  }

  // show gives a rule's value as text; objects with sorted keys, so two
  // equal rules read alike.
  function show(v) {
    if (v === undefined) return '–';
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.keys(v).sort().map(function (k) { return k + ': ' + JSON.stringify(v[k]); }).join(', ') || '{}';
    }
    if (Array.isArray(v)) return v.length ? v.join(', ') : '(none)';
    return String(v);
  }
  function ruleKeys(a, b) {
    var keys = ruleOrder.slice();
    Object.keys(a || {}).concat(Object.keys(b || {})).forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); });
    return keys.filter(function (k) { return (a && k in a) || (b && k in b); });
  }

  // declaredTables shows the tables the rules declare, one table each:
  // its columns, their roles and a metric's bounds.
  function declaredTables(co, names) {
    var ts = (co.rules || {}).tables || [];
    var box = el('div', { class: 'rule-tables', test: 'rules-tables' }, el('h4', { text: 'Declared tables' }));
    if (!ts.length) {
      box.appendChild(el('p', { class: 'small muted', text: 'The rules declare no tables: each partner brings one table, named audience, ' +
        'with the columns it uploads, and analysts may use the dimensions and metrics above.' }));
      return box;
    }
    box.appendChild(el('div', { class: 'grid2' }, ts.map(function (t) {
      return captioned({ class: 'data', test: 'rules-table', 'data-party': t.party, 'data-table': t.name },
        names(pidOf(co, t.party)) + ' (' + t.party + '): ' + t.name, ['Column', 'Role', 'Bounds'], (t.columns || []).map(function (c) {
          return el('tr', null, CR.td(el('code', { text: c.name })), CR.td(String(c.role)), CR.td(boundsText(c), 'n'));
        }));
    })));
    return box;
  }

  // tablesDiff shows the declared tables of the rules in force beside the
  // proposed ones, one table each, changes marked; nothing when neither
  // declares any (the rule tables says so).
  function tablesDiff(co, names) {
    var before = co.approved_rules.tables || [], after = co.rules.tables || [];
    if (!before.length && !after.length) return null;
    var box = el('div', { class: 'rule-tables', test: 'rules-tables-diff' }, el('h4', { text: 'Declared tables' }));
    var keys = [], find = function (ts, k) { return ts.filter(function (t) { return t.party + '/' + t.name === k; })[0]; };
    before.concat(after).forEach(function (t) { if (keys.indexOf(t.party + '/' + t.name) < 0) keys.push(t.party + '/' + t.name); });
    box.appendChild(el('div', { class: 'grid2' }, keys.map(function (k) {
      var a = find(before, k), b = find(after, k), t = a || b;
      var state = !a ? 'added' : !b ? 'removed' : canon(a) !== canon(b) ? 'changed' : '';
      var cols = [];
      (a ? a.columns : []).concat(b ? b.columns : []).forEach(function (c) { if (cols.indexOf(c.name) < 0) cols.push(c.name); });
      var col = function (tb, n) { return tb ? (tb.columns || []).filter(function (c) { return c.name === n; })[0] : undefined; };
      return captioned({ class: 'data diff', test: 'rules-table', 'data-party': t.party, 'data-table': t.name },
        [names(pidOf(co, t.party)) + ' (' + t.party + '): ' + t.name, state ? el('span', { class: 'badge changed', text: state }) : null],
        ['Column', 'In force', 'Proposed'], cols.map(function (n) {
          var x = col(a, n), y = col(b, n), changed = canon(x) !== canon(y);
          return el('tr', { class: changed ? 'changed' : '' }, CR.td(el('code', { text: n })),
            CR.td(a ? (x ? roleText(x) : 'not declared') : '–', 'old'), CR.td(b ? (y ? roleText(y) : 'not declared') : '–', 'new'));
        }));
    })));
    return box;
  }

  function rulesSection(co, names, rerender) {
    // value shows a rule: the declared tables by name (drawn in full below).
    var value = function (k, v) {
      if (k === 'tables') return v === undefined ? '–' : tablesText(co, names, v);
      // Partners by name, not ID (the explanation beside it names them too).
      if (k === 'queriers') return v && v.length ? v.map(names).join(', ') : 'both partners';
      return show(v);
    };
    var me = CR.me, s = el('section', { class: 'card' }, el('h3', { text: 'Rules (version ' + co.rules_version + ')' }));
    var pending = co.state === 'proposed';
    var mine = (co.approved_by || []).indexOf(me.partner_id) >= 0;
    var member = co.proposer === me.partner_id || co.partner === me.partner_id;
    if (co.approved_rules) {
      var waiting = [co.proposer, co.partner].filter(function (p) { return (co.approved_by || []).indexOf(p) < 0; }).map(names);
      s.appendChild(el('p', { text: 'A change of the rules awaits approval: the rules in force stay those both partners approved until ' +
        (waiting.join(' and ') || 'both') + ' approve' + (waiting.length === 1 ? 's' : '') + ' the change. Changed rules are marked.' }));
      s.appendChild(el('div', { class: 'scroll' }, CR.table({ class: 'data diff', test: 'rules-diff' }, ['Rule', 'In force (approved by both)', 'Proposed'],
        ruleKeys(co.approved_rules, co.rules).map(function (k) {
          var a = value(k, co.approved_rules[k]), b = value(k, co.rules[k]), changed = canon(co.approved_rules[k]) !== canon(co.rules[k]);
          // A changed rule says what the proposal would mean, in a sentence.
          return el('tr', { class: changed ? 'changed' : '' }, CR.td(CR.ruleName(k)), CR.td(a, 'old'),
            CR.td([b, changed ? el('span', { class: 'badge changed', text: 'changed' }) : null,
              changed ? el('span', { class: 'small rule-meaning', test: 'rule-meaning', text: CR.explainRule(k, co.rules[k], names) }) : null], 'new'));
        }))));
      CR.append(s, tablesDiff(co, names));
    } else {
      s.appendChild(el('div', { class: 'scroll' }, CR.table({ class: 'data rules-table', test: 'rules' }, ['Rule', 'Value', 'What it means'], ruleKeys(co.rules).map(function (k) {
        return el('tr', null, CR.td(CR.ruleName(k)), CR.td(value(k, co.rules[k])), CR.td(CR.explainRule(k, co.rules[k], names), 'small rule-meaning'));
      }))));
      s.appendChild(declaredTables(co, names));
    }
    // A member's admin changes the rules with the rules form.
    if (CR.can('approve') && member && co.state !== 'deleted') {
      s.appendChild(el('div', { class: 'toolbar' }, el('a', { class: 'button', test: 'change-rules', href: '#/collab/' + encodeURIComponent(co.id) + '/rules', text: 'Change the rules' })));
    }
    if (!pending) return s;
    var who = (co.approved_by || []).map(names).join(' and ') || 'nobody';
    s.appendChild(el('p', { class: 'muted', text: 'Approved so far by ' + who + '.' }));
    if (CR.can('approve') && member && !mine) {
      var msg = el('div');
      var act = function (path, body) {
        return function (ev) {
          ev.target.disabled = true;
          CR.api('POST', '/v1/collaborations/' + encodeURIComponent(co.id) + path, { body: body }).then(rerender, function (e) {
            ev.target.disabled = false;
            if (e.status !== 401) CR.clear(msg).appendChild(CR.errorBox(e));
          });
        };
      };
      s.appendChild(el('div', { class: 'toolbar' },
        el('button', { class: 'primary', test: 'approve', text: 'Approve these rules', onclick: act('/approve', { rules_version: co.rules_version }) }),
        co.approved_rules ? el('button', { test: 'reject', text: 'Reject the change', title: 'Go back to the rules in force', onclick: act('/reject', { rules_version: co.rules_version }) }) : null,
        co.approved_rules ? null : el('span', { class: 'small muted', text: 'To decline a first proposal, delete the collaboration (cleanroom delete --collab ' + co.id + ' --collaboration).' })));
      s.appendChild(msg);
    } else if (mine) {
      s.appendChild(el('p', { class: 'muted', text: 'Your partner approved; waiting for the other partner.' }));
    }
    return s;
  }

  CR.collabView = function (panel, co, alive) {
    var base = '/v1/collaborations/' + encodeURIComponent(co.id), names = CR.partnerNames(co);
    var rerender = function () { if (alive()) CR.route(); };
    var audiences = el('section', { class: 'card', test: 'audiences' }, el('h3', { text: 'Tables' }), el('p', { class: 'muted', text: 'Loading…' }));
    var matches = el('section', { class: 'card', test: 'matches' }, el('h3', { text: 'Matches' }), el('p', { class: 'muted', text: 'Loading…' }));
    var receipts = el('section', { class: 'card', test: 'receipts' }, el('h3', { text: 'Deletions' }), el('p', { class: 'muted', text: 'Loading…' }));
    CR.clear(panel);
    CR.append(panel, [rulesSection(co, names, rerender), audiences, matches, receipts]);

    var report = CR.api('GET', base + '/report');
    var aud = CR.api('GET', base + '/audiences');
    CR.guard(alive, audiences, Promise.all([aud, report]).then(function (x) {
      if (!alive()) return;
      drawTables(audiences, co, x[0], x[1].data_held || [], names, alive);
    }));
    CR.guard(alive, matches, report.then(function (r) {
      if (!alive()) return;
      var ms = r.matches || [];
      CR.clear(matches).appendChild(el('h3', { text: 'Matches' }));
      matches.appendChild(ms.length ? el('div', { class: 'scroll' }, CR.table({ class: 'data' }, ['Match', 'State', 'Noisy cohort size', 'ε', 'Started'], ms.map(function (m) {
        return el('tr', null, CR.td(m.id, 'mono'), CR.td(el('span', { class: 'state ' + m.state, text: m.state })),
          CR.td(m.cohort_size_noisy === null || m.cohort_size_noisy === undefined ? '–' : CR.num(m.cohort_size_noisy), 'n'),
          CR.td(CR.eps(m.epsilon), 'n'), CR.td(CR.time(m.created_at)));
      }))) : el('p', { class: 'muted', text: 'No match yet: an engineer of each partner runs cleanroom match.' }));
      matches.appendChild(el('p', { class: 'small muted', text: 'The cohort size is noisy (Laplace, the rule match_epsilon): the only size either partner ever sees.' }));
    }));
    CR.guard(alive, receipts, Promise.all([CR.api('GET', base + '/receipts'), report]).then(function (x) {
      if (!alive()) return;
      var took = {};
      (x[1].honoured || []).forEach(function (h) { took[h.receipt_id] = h.seconds; });
      var rs = x[0].receipts || [];
      CR.clear(receipts).appendChild(el('h3', { text: 'Deletions' }));
      receipts.appendChild(rs.length ? el('div', { class: 'scroll' }, CR.table({ class: 'data' },
        ['Kind', 'Partner', 'At', 'Identifiers', 'Audience rows', 'Tokens', 'Matches', 'Took', 'Log entry', 'Receipt'], rs.map(function (r) {
          return el('tr', null, CR.td(el('span', { class: 'badge', text: r.kind })), CR.td(names(r.partner_id)), CR.td(CR.time(r.at)),
            CR.td(r.identifiers ? CR.num(r.identifiers) : '–', 'n'), CR.td(CR.num(r.audience_rows), 'n'), CR.td(CR.num(r.tokens), 'n'),
            CR.td(r.matches ? CR.num(r.matches) : '–', 'n'), CR.td(r.id in took ? CR.duration(took[r.id]) : '–', 'n'),
            CR.td('#' + r.audit_seq, 'n'), CR.td(r.id, 'mono small'));
        }))) : el('p', { class: 'muted', text: 'No deletion yet.' }));
      receipts.appendChild(el('p', { class: 'small muted', text: 'Each receipt is signed by the server and names its audit log entry: cleanroom receipt verify checks both. ' +
        'Receipts count your own data only; what happened to the cohorts is said in the same words whatever the data.' }));
    }));
  };

  // drawTables shows each partner's tables: those the rules in force
  // declare (uploaded or not yet) and any other uploaded, each with its
  // columns, their types and roles, and, for the reader's own partner
  // (every partner for the operator), its rows and people: the API gives
  // no one the other partner's sizes.
  function drawTables(box, co, list, held, names, alive) {
    CR.clear(box).appendChild(el('h3', { text: 'Tables' }));
    var rules = co.approved_rules || co.rules || {}, declared = (rules.tables || []).length > 0;
    var charts = [], unknown = {};
    var byPartner = list.tables || {};
    // A server before named tables answers audiences only.
    Object.keys(list.audiences || {}).forEach(function (pid) { if (!byPartner[pid]) byPartner[pid] = [list.audiences[pid]]; });
    var cards = [co.proposer, co.partner].map(function (pid) {
      var party = partyOf(co, pid), own = pid === CR.me.partner_id || CR.me.operator;
      var h = held.filter(function (x) { return x.partner_id === pid; })[0] || {};
      var uploaded = {}, order = [];
      (rules.tables || []).forEach(function (t) { if (t.party === party) order.push(t.name); });
      (byPartner[pid] || []).forEach(function (a) {
        var name = a.table || 'audience';
        uploaded[name] = a;
        if (order.indexOf(name) < 0) order.push(name);
      });
      var card = el('div', { class: 'audience', test: 'partner-tables', 'data-partner': pid },
        el('h4', null, names(pid), el('span', { class: 'muted', text: ' (' + party + (pid === CR.me.partner_id ? ', yours' : '') + ')' })));
      if (!order.length) card.appendChild(el('p', { class: 'muted', text: 'No table uploaded yet.' }));
      order.forEach(function (name) {
        var a = uploaded[name], rule = (rules.tables || []).filter(function (t) { return t.party === party && t.name === name; })[0];
        var retention = null;
        if (a) {
          retention = el('dd', { text: a.expires_at ? 'deleted on ' + CR.time(a.expires_at) : '–' });
          if (!a.expires_at) unknown[a.id] = retention;
        }
        card.appendChild(el('div', { class: 'table-card', test: 'table', 'data-table': name },
          el('h5', null, el('code', { text: name }), a ? null : el('span', { class: 'badge', text: 'not uploaded yet' }),
            a && declared && !rule ? el('span', { class: 'badge', text: 'not declared' }) : null),
          a ? el('dl', { class: 'facts-list' },
            el('dt', { text: 'Audience' }), el('dd', { class: 'mono', text: a.id }),
            el('dt', { text: 'Uploaded' }), el('dd', { text: CR.time(a.created_at) }),
            a.rows ? [el('dt', { text: 'Rows' }), el('dd', { test: 'table-rows', text: CR.num(a.rows) })] : null,
            a.people ? [el('dt', { text: 'People' }), el('dd', { test: 'table-people', text: CR.num(a.people) + (a.people_matchable !== undefined ? ' (' + CR.num(a.people_matchable) + ' can match)' : '') })] : null,
            el('dt', { text: 'Retention' }), retention) : null,
          columnsTable(name, a, rule)));
      });
      var mix = h.consent_rows_by_purpose || [];
      var chart = mix.length ? el('div', { class: 'chart small-chart', 'data-chart': 'consent-mix' }) : null;
      if (chart) charts.push([chart, mix]);
      CR.append(card, chart ? [el('h5', { text: 'Consent mix (rows per purpose, all tables)' }), chart] :
        order.length ? el('p', { class: 'small muted', text: own ? 'No consent column.' : 'Sizes and consent mix are the other partner\'s own business.' }) : null);
      return card;
    });
    box.appendChild(el('div', { class: 'grid2' }, cards));
    box.appendChild(el('p', { class: 'small muted', text: declared ?
      'Roles are those of the rules in force. Analysts name a column behind its partner\'s prefix (a partner named Brand Co: brand_co_amount), as the workbench\'s Tables and columns lists them.' :
      'The rules declare no tables: each partner has one, named audience, its columns are not declared, and analysts may use the rules\' dimensions and metrics.' }));
    if (Object.keys(unknown).length && CR.can('audit')) findRetention(co.id, unknown, alive);
    charts.forEach(function (c) {
      CR.chart(c[0], {
        tooltip: { trigger: 'axis', renderMode: 'richText', confine: true },
        grid: { left: 16, right: 32, top: 8, bottom: 8, outerBoundsMode: 'same', outerBoundsContain: 'axisLabel' },
        xAxis: { type: 'value' }, yAxis: { type: 'category', inverse: true, data: c[1].map(function (p) { return p.purpose; }) },
        series: [{ type: 'bar', data: c[1].map(function (p) { return p.rows; }), barMaxWidth: 28, label: { show: true, position: 'right' } }]
      });
    });
  }

  // columnsTable lists a table's columns: the uploaded ones with their
  // types, then any declared column not uploaded; each with its role in
  // the rules (pid and consent are in every table).
  function columnsTable(name, a, rule) {
    var cols = [], seen = {};
    (Array.isArray(a && a.columns) ? a.columns : []).forEach(function (c) {
      if (c && typeof c === 'object') { seen[c.name] = true; cols.push({ name: c.name, type: typeName(c.type) }); }
    });
    (rule ? rule.columns || [] : []).forEach(function (c) { if (!seen[c.name]) cols.push({ name: c.name, type: '–' }); });
    var role = function (n) {
      if (n === 'pid') return 'blinded identifier';
      if (n === 'consent') return 'consent purposes';
      var c = rule ? (rule.columns || []).filter(function (x) { return x.name === n; })[0] : null;
      return c ? roleText(c) : 'not declared';
    };
    return el('div', { class: 'scroll' }, CR.table({ class: 'data columns', test: 'table-columns', 'aria-label': 'Columns of ' + name },
      ['Column', 'Type', 'Role'], cols.map(function (c) {
        return el('tr', null, CR.td(el('code', { text: c.name })), CR.td(c.type, 'small'), CR.td(role(c.name)));
      })));
  }

  // typeName shortens an Arrow type name: utf8 is string, date32 date,
  // list<item: utf8, nullable> list<string>.
  function typeName(t) {
    t = String(t || '–');
    var m = /^(large_)?list<item: ([^,>]+)(, nullable)?>$/.exec(t);
    if (m) return 'list<' + typeName(m[2]) + '>';
    return { utf8: 'string', large_utf8: 'string', date32: 'date', date64: 'date' }[t] || t;
  }

  // findRetention reads the audiences' expiries from their uploads' audit
  // entries, for the roles that read the log (the audience list does not
  // carry them); dds maps audience IDs to where each goes.
  function findRetention(cid, dds, alive) {
    CR.api('GET', '/v1/audit', { query: { collab: cid, action: 'audience.upload', order: 'desc', limit: 100 } }).then(function (l) {
      if (!alive()) return;
      (l.entries || []).forEach(function (e) {
        var dd = e.details && dds[e.details.audience_id];
        if (dd) dd.textContent = e.details.expires_at ? 'deleted on ' + CR.time(e.details.expires_at) : 'none: kept until deleted';
      });
    }, function () { /* the retention stays unknown */ });
  }
})();
