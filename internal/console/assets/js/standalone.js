// The standalone export's start: console.Standalone inlines this after
// the report scripts, with the report's JSON in #cr-data; it draws the
// same page as the console's, with no network.
(function () {
  'use strict';
  var CR = window.CR;
  var data = document.getElementById('cr-data');
  var app = document.getElementById('app');
  var page = data.getAttribute('data-page');
  var value = JSON.parse(data.textContent);
  app.appendChild(CR.el('div', { class: 'toolbar noprint' },
    CR.el('button', { test: 'print', text: 'Print', onclick: function () { window.print(); } })));
  var body = CR.el('div');
  app.appendChild(body);
  if (page === 'privacy') CR.renderPrivacy(body, value);
  else CR.renderReport(body, value);
})();
