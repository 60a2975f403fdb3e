// Charts: Apache ECharts (vendored), canvas renderer. ECharts is a
// megabyte of script, so the console loads it only when a view draws a
// chart (never on the audit log). A chart's container gets
// data-rendered="true" once ECharts has finished drawing it, for the
// browser tests to wait on.
(function () {
  'use strict';
  var CR = (window.CR = window.CR || {});
  var loading = null;
  CR.charts = [];

  CR.loadECharts = function () {
    if (window.echarts) return Promise.resolve(window.echarts);
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var s = document.createElement('script');
        s.src = '/console/vendor/echarts-6.0.0/echarts.min.js';
        s.onload = function () { resolve(window.echarts); };
        s.onerror = function () { loading = null; reject(new Error('could not load the charting library')); };
        document.head.appendChild(s);
      });
    }
    return loading;
  };

  CR.palette = ['#2f6fb0', '#e07b39', '#3a9a5b', '#b8464b', '#7a5ba6', '#8c6d3f', '#c0629f', '#5f6b73'];

  // chart draws option into container (already in the page). Tooltips
  // are drawn on the canvas (renderMode richText): ECharts' HTML
  // tooltips carry inline styles, which the console's CSP refuses.
  CR.chart = function (container, option) {
    return CR.loadECharts().then(function (echarts) {
      if (!container.isConnected) return null;
      // Charts of parts of the page since replaced go now.
      CR.charts = CR.charts.filter(function (c) {
        if (c.isDisposed()) return false;
        if (c.getDom().isConnected) return true;
        c.dispose();
        return false;
      });
      var c = echarts.init(container, null, { renderer: 'canvas' });
      c.on('finished', function () { container.setAttribute('data-rendered', 'true'); });
      c.setOption(Object.assign({
        animation: false,
        color: CR.palette,
        textStyle: { fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif' },
        tooltip: { renderMode: 'richText', confine: true }
      }, option));
      CR.charts.push(c);
      return c;
    }).catch(function (e) {
      CR.clear(container).appendChild(CR.el('p', { class: 'muted', text: e.message }));
      return null;
    });
  };

  // empty is the option of a chart with nothing to show yet.
  CR.emptyChart = function (text) {
    return {
      title: { text: text, left: 'center', top: 'middle', textStyle: { color: '#777', fontSize: 13, fontWeight: 'normal' } },
      xAxis: { show: false }, yAxis: { show: false }, series: []
    };
  };

  // disposeIn removes the chart drawn in container, to draw it again.
  CR.disposeIn = function (container) {
    var c = window.echarts && window.echarts.getInstanceByDom(container);
    if (c) c.dispose();
    container.removeAttribute('data-rendered');
  };

  CR.disposeCharts = function () {
    CR.charts.forEach(function (c) { if (!c.isDisposed()) c.dispose(); });
    CR.charts = [];
  };

  // Printing: charts redraw at the paper's width (about 17 cm at 96
  // dpi), then back.
  function resizeAll(width) {
    CR.charts.forEach(function (c) {
      if (!c.isDisposed()) c.resize(width ? { width: width } : undefined);
    });
  }
  window.addEventListener('beforeprint', function () { resizeAll(640); });
  window.addEventListener('afterprint', function () { resizeAll(); });
  // Printing without those events (headless Chromium's PDF) still
  // switches the media.
  if (window.matchMedia) {
    window.matchMedia('print').addEventListener('change', function (e) { resizeAll(e.matches ? 640 : undefined); });
  }
  window.addEventListener('resize', function () { resizeAll(); });
})();
