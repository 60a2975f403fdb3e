// The transparency report and the public privacy report, drawn from
// their JSON (wire.Report, wire.PrivacyReport). The console's pages and
// the standalone HTML exports (console.Standalone) run this same code,
// so a saved report shows what the console shows.
(function () {
  'use strict';
  var CR = (window.CR = window.CR || {});
  var el = CR.el;

  function section(title, kids, test) {
    return el('section', { class: 'card', test: test }, el('h2', { text: title }), kids);
  }

  // alternative is a chart's figures as text: a sentence for the chart's
  // accessible name and a table, from the same categories and series the
  // chart draws.
  function alternative(kind, head, categories, series) {
    var parts = categories.map(function (c, i) {
      return c + ': ' + series.map(function (s) { return (series.length > 1 ? s.name + ' ' : '') + CR.num(s.data[i]); }).join(', ');
    });
    return {
      text: kind + (parts.length ? '. ' + parts.join('; ') + '.' : ', empty.'),
      head: [head].concat(series.map(function (s) { return s.name; })),
      rows: categories.map(function (c, i) { return [c].concat(series.map(function (s) { return CR.num(s.data[i]); })); })
    };
  }

  // chartBox is a chart's figure: the chart is an image named by its
  // figures in words, with the figures in a table under it (closed, and
  // left off paper, where the chart shows them).
  function chartBox(name, title, note, alt) {
    alt = alt || { text: title, head: [], rows: [] };
    return el('figure', { class: 'figure', test: 'report-figure', 'data-figure': name },
      el('figcaption', { text: title }),
      el('div', { class: 'chart', test: 'report-chart', 'data-chart': name, role: 'img', 'aria-label': title + ': ' + alt.text }),
      note ? el('p', { class: 'muted small', text: note }) : null,
      alt.rows.length ? el('details', { class: 'chart-data noprint' }, el('summary', { text: 'The figures as a table' }),
        el('div', { class: 'scroll' }, CR.table({ class: 'data', test: 'chart-table' }, alt.head, alt.rows.map(function (r) {
          return el('tr', null, r.map(function (v, i) { return CR.td(v, i ? 'n' : null); }));
        })))) : null);
  }
  function chartIn(root, name) { return root.querySelector('[data-chart="' + name + '"]'); }

  // barOption is a bar chart of categories with one series per name.
  // opts.counts: the values are counts, so the value axis has whole
  // ticks only.
  function barOption(categories, series, opts) {
    opts = opts || {};
    var value = { type: 'value', name: opts.valueName, minInterval: opts.counts ? 1 : undefined, axisLabel: { hideOverlap: true } };
    return {
      tooltip: { trigger: 'axis', renderMode: 'richText', confine: true },
      legend: series.length > 1 ? { top: 0 } : undefined,
      grid: { left: 16, right: 24, top: series.length > 1 ? 32 : opts.labels ? 24 : 12, bottom: 8, outerBoundsMode: 'same', outerBoundsContain: 'axisLabel' },
      xAxis: opts.horizontal ? value : { type: 'category', data: categories, axisLabel: { interval: 0, hideOverlap: true } },
      yAxis: opts.horizontal ? { type: 'category', data: categories, inverse: true } : value,
      series: series.map(function (s) {
        return { type: 'bar', name: s.name, data: s.data, stack: opts.stack ? 'all' : undefined, barMaxWidth: 48,
          label: opts.labels ? { show: true, position: opts.horizontal ? 'right' : 'top' } : undefined };
      })
    };
  }

  // byPartner pivots rows into categories x partners.
  function byPartner(rows, cat, value, name) {
    var cats = [], partners = [], v = {};
    rows.forEach(function (r) {
      var c = cat(r), p = r.partner_id;
      if (cats.indexOf(c) < 0) cats.push(c);
      if (partners.indexOf(p) < 0) partners.push(p);
      v[c + '\u0000' + p] = (v[c + '\u0000' + p] || 0) + value(r);
    });
    return {
      categories: cats,
      series: partners.map(function (p) {
        return { name: name(p), data: cats.map(function (c) { return Math.round((v[c + '\u0000' + p] || 0) * 1e6) / 1e6; }) };
      })
    };
  }

  // renderReport fills root with a collaboration's transparency report.
  CR.renderReport = function (root, r) {
    var co = r.collaboration || {}, name = CR.partnerNames(co), rules = co.rules || {};
    var held = r.data_held || [];
    var consent = [];
    held.forEach(function (h) {
      (h.consent_rows_by_purpose || []).forEach(function (p) { consent.push({ partner_id: h.partner_id, purpose: p.purpose, rows: p.rows }); });
    });

    // Each chart's categories and series, drawn and written out alike.
    var days = r.budget_spent_by_day || [];
    var b = byPartner(days.slice().sort(function (x, y) { return x.day < y.day ? -1 : x.day > y.day ? 1 : 0; }),
      function (d) { return d.day; }, function (d) { return d.epsilon; }, name);
    var an = r.queries_by_analyst || [];
    var anCats = an.map(function (a) {
      return (a.analyst_name || a.analyst_label || a.analyst_key) + ' (' + name(a.partner_id) + ', ε ' + CR.eps(a.epsilon) + ')';
    });
    var anSeries = [{ name: 'answers', data: an.map(function (a) { return a.queries; }) }];
    var rf = r.refusals_by_reason || [];
    var rfCats = rf.map(function (x) { return x.reason; });
    var rfSeries = [{ name: 'refusals', data: rf.map(function (x) { return x.refusals; }) }];
    var c = byPartner(consent, function (x) { return x.purpose; }, function (x) { return x.rows; }, name);
    var del = r.deletions || [];
    var d = byPartner(del, function (x) { return x.kind; }, function (x) { return x.receipts; }, name);

    var page = el('article', { class: 'report', test: 'report' },
      el('header', { class: 'report-head' },
        el('h1', { text: 'Transparency report: ' + (co.name || co.id) }),
        el('p', { class: 'lead' }, name(co.proposer) + ' and ' + name(co.partner) + ' · purpose ' + (rules.purpose || '–') +
          ' · ' + (co.state || '') + ' · generated ' + CR.time(r.generated_at))),
      section('Exposure', el('p', { class: 'lead', test: 'report-exposure', text: (r.words || {}).exposure || '' })),
      el('div', { class: 'grid2' },
        chartBox('budget', 'Privacy budget spent per day (ε)', 'Queries and matches, by partner, by day (UTC).',
          alternative('Bar chart of ε spent per day, by partner', 'Day', b.categories, b.series)),
        chartBox('analysts', 'Answers released per analyst', 'Each analyst key, by its label, with the ε its answers spent.',
          alternative('Bar chart of answers per analyst key', 'Analyst', anCats, anSeries)),
        chartBox('refusals', 'Refused queries by reason', null, alternative('Bar chart of refused queries by reason', 'Reason', rfCats, rfSeries)),
        chartBox('consent', 'Consent mix of the audience rows, by purpose', 'Only each partner\'s own audience: a partner\'s consent mix is its own business.',
          alternative('Bar chart of rows by consent purpose', 'Purpose', c.categories, c.series)),
        chartBox('deletions', 'Deletion receipts by kind', null, alternative('Bar chart of deletion receipts by kind', 'Kind', d.categories, d.series))),
      section('Data held', held.length ? el('div', { class: 'scroll' }, CR.table({ class: 'data' }, ['Partner', 'Table', 'Audience', 'Uploaded', 'Rows', 'People', 'Columns'],
        held.map(function (h) {
          // Every table of the partner's (a report before named tables has its one audience).
          var ts = (h.tables || []).length ? h.tables : h.audience ? [h.audience] : [null];
          return ts.map(function (a, i) {
            return el('tr', null, CR.td(i ? '' : name(h.partner_id)), CR.td(a ? a.table || 'audience' : '–', 'mono'), CR.td(a ? a.id : 'none'),
              CR.td(a ? CR.time(a.created_at) : '–'), CR.td(a && a.rows ? CR.num(a.rows) : '–', 'n'), CR.td(a && a.people ? CR.num(a.people) : '–', 'n'),
              CR.td(a ? CR.columnsText(a.columns) : '–', 'small'));
          });
        }))) : el('p', { class: 'muted', text: 'No data held.' })),
      section('Matches', (r.matches || []).length ? el('div', { class: 'scroll' }, CR.table({ class: 'data' }, ['Match', 'State', 'Noisy cohort size', 'ε', 'Started'],
        r.matches.map(function (m) {
          return el('tr', null, CR.td(m.id, 'mono'), CR.td(m.state), CR.td(m.cohort_size_noisy === null ? '–' : CR.num(m.cohort_size_noisy), 'n'),
            CR.td(CR.eps(m.epsilon), 'n'), CR.td(CR.time(m.created_at)));
        }))) : el('p', { class: 'muted', text: 'No match yet.' })),
      section('Deletions honoured', (r.honoured || []).length ? el('div', { class: 'scroll' }, CR.table({ class: 'data' }, ['Receipt', 'Kind', 'Partner', 'Requested', 'Honoured', 'Took'],
        r.honoured.map(function (h) {
          return el('tr', null, CR.td(h.receipt_id, 'mono'), CR.td(h.kind), CR.td(name(h.partner_id)), CR.td(CR.time(h.requested_at)),
            CR.td(CR.time(h.honoured_at)), CR.td(h.took || CR.duration(h.seconds), 'n'));
        }))) : el('p', { class: 'muted', text: 'No deletion of your data yet.' })));
    CR.append(CR.clear(root), page);

    CR.chart(chartIn(page, 'budget'), days.length ? barOption(b.categories, b.series, { stack: true, valueName: 'ε' }) : CR.emptyChart('Nothing spent yet'));
    CR.chart(chartIn(page, 'analysts'), an.length ? barOption(anCats, anSeries, { horizontal: true, labels: true, counts: true }) : CR.emptyChart('No answer released yet'));
    CR.chart(chartIn(page, 'refusals'), rf.length ? barOption(rfCats, rfSeries, { horizontal: true, labels: true, counts: true }) : CR.emptyChart('No query refused'));
    CR.chart(chartIn(page, 'consent'), consent.length ? barOption(c.categories, c.series, { valueName: 'rows', labels: true, counts: true }) :
      CR.emptyChart('No consent column in your audience'));
    CR.chart(chartIn(page, 'deletions'), del.length ? barOption(d.categories, d.series, { stack: true, valueName: 'receipts', labels: true, counts: true }) :
      CR.emptyChart('No deletion yet'));
    return page;
  };

  // columnsText shows an audience's columns (raw JSON in wire.Audience)
  // as "name type, ...".
  CR.columnsText = function (cols) {
    if (!Array.isArray(cols)) return cols ? JSON.stringify(cols) : '–';
    return cols.map(function (c) { return typeof c === 'object' && c ? c.name + (c.type ? ' ' + c.type : '') : String(c); }).join(', ');
  };

  // renderPrivacy fills root with a partner's public privacy report: in
  // plain words, for the people in its data. The sentences come with the
  // report (wire.PrivacyWords), as the command line prints them.
  CR.renderPrivacy = function (root, p) {
    var who = p.partner_name || p.partner_id;
    var w = p.words || {}, about = p.about || {};
    var cols = p.collaborations || [];
    var kinds = ['opt-outs', 'deletion requests', 'expiries'];
    var hSeries = [{ name: 'honoured', data: [p.opt_outs_honoured || 0, p.deletion_requests_honoured || 0, p.expiries_honoured || 0] }];
    var xCats = cols.map(function (c) { return c.name + ' (' + c.partner_name + ')'; });
    var xSeries = [{ name: 'ε', data: cols.map(function (c) { return Math.round(c.epsilon_spent * 100) / 100; }) }];
    var page = el('article', { class: 'report privacy', test: 'privacy-report' },
      el('header', { class: 'report-head' },
        el('h1', { text: w.title }),
        el('p', { class: 'lead', text: w.period }),
        about.introduction ? el('div', { class: 'intro', test: 'privacy-intro' }, about.introduction.split('\n').filter(Boolean).map(function (t) {
          return el('p', { text: t });
        })) : null),
      section('Where your data was used', [
        el('p', { text: w.uses }),
        cols.length ? el('ul', { class: 'uses' }, cols.map(function (c) {
          return el('li', null, el('strong', { text: c.name }), ' with ' + c.partner_name + ', for the purpose ',
            el('em', { text: c.purpose }), ': ' + c.use + '.');
        })) : null
      ]),
      section('No identifier left ' + who + ' in the clear', el('div', { class: 'big-fact' },
        el('span', { class: 'big', text: CR.num(p.identifiers_in_the_clear) }),
        el('p', { text: w.identifiers }))),
      section('What the privacy guarantee means', [
        el('p', { text: w.guarantee }),
        cols.length ? el('ul', { class: 'uses', test: 'privacy-exposure' }, cols.map(function (c) {
          return el('li', null, el('strong', { text: c.name }), ' so far: ' + c.exposure);
        })) : null,
        cols.length ? chartBox('exposure', 'Privacy loss (ε) of each collaboration, over its life', null,
          alternative('Bar chart of ε per collaboration', 'Collaboration', xCats, xSeries)) : null,
        // Losses add up for someone in several collaborations: the total,
        // not the highest, is that person's exposure.
        el('p', { test: 'exposure-total' }, el('strong', { text: 'In all: ε = ' + CR.eps(p.total_epsilon_spent || 0) }),
          ' across all of ' + who + '\'s collaborations, for someone in every one of them.'),
        el('p', { test: 'exposure-cap', text: capWords(who, p.exposure_cap || {}) })
      ]),
      section('Your requests, honoured', [
        el('div', { class: 'facts' },
          fact(p.opt_outs_honoured, 'opt-outs honoured'),
          fact(p.deletion_requests_honoured, 'deletion requests honoured'),
          fact(p.expiries_honoured, 'expiries: data deleted when its time ran out'),
          fact(w.median_time || '–', 'median time to honour one', 'privacy-median')),
        el('p', { text: w.requests }),
        chartBox('honoured', 'Requests honoured, by kind', null, alternative('Bar chart of requests honoured by kind', 'Kind', kinds, hSeries))
      ]),
      choices(p, who, about),
      editor(root, p),
      el('footer', { class: 'muted small', text: 'Generated ' + CR.time(p.generated_at) + '. Every figure is a total: nothing here is about any one person, nor about the data itself.' }));
    CR.append(CR.clear(root), page);

    CR.chart(chartIn(page, 'honoured'), barOption(kinds, hSeries, { labels: true, counts: true }));
    if (cols.length) CR.chart(chartIn(page, 'exposure'), barOption(xCats, xSeries, { horizontal: true, labels: true }));
    return page;
  };

  // capWords states the partner's cap on that total in plain words.
  function capWords(who, c) {
    var capped = function (v) { return v !== null && v !== undefined; };
    if (!capped(c.epsilon) && !capped(c.delta)) {
      return who + ' sets no cap on that total.';
    }
    var parts = [];
    if (capped(c.epsilon)) { parts.push('ε = ' + CR.eps(c.epsilon)); }
    if (capped(c.delta)) { parts.push('δ = ' + CR.eps(c.delta)); }
    var monthly = c.refresh === 'monthly';
    return who + ' caps it at ' + parts.join(' and ') + (monthly ? ' in each calendar month (UTC)' : ' over all time') +
      ', and refuses any question or match that would pass it (' + (monthly ? 'this month: ' : 'so far: ') +
      'ε = ' + CR.eps(c.epsilon_spent || 0) + ').';
  }

  function fact(n, what, test) {
    return el('div', { class: 'fact', test: test }, el('span', { class: typeof n === 'number' ? 'big' : 'big words', text: typeof n === 'number' ? CR.num(n) : n }),
      el('span', { text: what }));
  }

  // choices is how a reader opts out or asks about privacy, as the
  // partner's admin set them; the server let only an https link through,
  // and the page checks again before making it one.
  function choices(p, who, about) {
    if (!about.opt_out_url && !about.privacy_contact) return null;
    var link = /^https:\/\//i.test(about.opt_out_url || '');
    return section('Your choices', el('dl', { class: 'facts-list' },
      about.opt_out_url ? [el('dt', { text: 'To opt out' }), el('dd', null, link ?
        el('a', { href: about.opt_out_url, rel: 'noopener noreferrer', test: 'privacy-optout', text: about.opt_out_url }) : about.opt_out_url)] : null,
      about.privacy_contact ? [el('dt', { text: 'Questions about privacy' }), el('dd', { test: 'privacy-contact', text: about.privacy_contact })] : null), 'privacy-choices');
  }

  // editor lets the partner's own admin, in the console, set the
  // introduction, privacy contact and opt-out link (never on paper, nor
  // in an export, where no one is signed in).
  function editor(root, p) {
    if (!CR.me || CR.me.operator || CR.me.role !== 'admin' || CR.me.partner_id !== p.partner_id) return null;
    var about = p.about || {};
    var intro = el('textarea', { id: 'about-intro', test: 'about-intro', rows: 4, maxlength: 2000 });
    intro.value = about.introduction || '';
    var contact = el('input', { id: 'about-contact', test: 'about-contact', maxlength: 200, value: about.privacy_contact || '' });
    var optout = el('input', { id: 'about-optout', test: 'about-optout', type: 'url', maxlength: 500, placeholder: 'an https link to your opt-out page', value: about.opt_out_url || '' });
    var msg = el('p', { class: 'small', role: 'status', test: 'about-message' });
    return el('details', { class: 'card noprint about-editor', test: 'about-editor' },
      el('summary', { text: 'Edit the introduction, privacy contact and opt-out link' }),
      el('form', { novalidate: true, onsubmit: function (e) {
        e.preventDefault();
        msg.textContent = 'Saving…';
        CR.api('PUT', '/v1/partners/' + encodeURIComponent(p.partner_id) + '/report-settings',
          { body: { introduction: intro.value, privacy_contact: contact.value, opt_out_url: optout.value } }).then(function (set) {
          p.about = set;
          CR.renderPrivacy(root, p);
        }, function (err) { msg.textContent = err.message; });
      } },
        el('label', { for: 'about-intro', text: 'Introduction (paragraphs on lines of their own)' }), intro,
        el('label', { for: 'about-contact', text: 'Privacy contact' }), contact,
        el('label', { for: 'about-optout', text: 'Opt-out link (https)' }), optout,
        el('button', { type: 'submit', test: 'about-save', text: 'Save' }), msg));
  }
})();
