package api

import (
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/query"
)

// metrics are the server's Prometheus metrics. Labels are routes and
// statuses only: never IDs, keys or identifiers.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cleanroom_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cleanroom_http_request_seconds", Help: "HTTP request time by route and method.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"route", "method"}),
	}
	m.reg.MustRegister(m.requests, m.duration, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// countRefusalsNotLogged exports how many query refusals' audit entries
// failed: refusals are documented as logged, so a gap must be seen.
func (m *metrics) countRefusalsNotLogged(qs *query.Service) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "cleanroom_query_refusals_not_audited_total", Help: "Query refusals whose audit log entry failed to append.",
	}, func() float64 { return float64(qs.RefusalsNotLogged()) }))
}

// watchStorage exports the room left on the database's disk and the
// database's own size (its file and WAL): an operator alerts before
// free space reaches the reserve (Config.MinFreeBytes), under which
// writes answer 507, and keeps room for a backup's snapshot (about the
// database's size).
func (m *metrics) watchStorage(db *store.DB, reserve int64) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cleanroom_disk_free_bytes", Help: "Free space on the data directory's file system.",
		}, func() float64 {
			free, err := store.FreeBytes(filepath.Dir(db.Path()))
			if err != nil {
				return -1
			}
			return float64(free)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cleanroom_disk_reserve_bytes", Help: "Free space under which routes that write answer 507 (serve --min-free-bytes).",
		}, func() float64 { return float64(reserve) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cleanroom_database_bytes", Help: "The database file and its WAL.",
		}, func() float64 {
			var n int64
			for _, p := range []string{db.Path(), db.Path() + ".wal"} {
				if st, err := os.Stat(p); err == nil {
					n += st.Size()
				}
			}
			return float64(n)
		}),
	)
}

func (m *metrics) observe(c echo.Context, d time.Duration) {
	route := c.Path()
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, c.Request().Method, strconv.Itoa(c.Response().Status)).Inc()
	m.duration.WithLabelValues(route, c.Request().Method).Observe(d.Seconds())
}

func (m *metrics) handler() echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
}
