package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// SoakOptions configure `cleanroom bench soak`.
type SoakOptions struct {
	Duration time.Duration
	Seed     uint64
	// Server is the command line that starts the server; the soak
	// appends --data DIR --addr HOST:PORT.
	Server []string
	// KillMin and KillMax bound the time between two kills (uniform,
	// seeded); zero picks 20 s to 40 s, or less for a short run, so a run
	// of a few minutes still restarts several times.
	KillMin, KillMax time.Duration
	// RSSLimitBytes is the server's resident memory the soak tolerates;
	// above it is an invariant failure.
	RSSLimitBytes int64
	// MemoryLimit is passed to serve --memory-limit (DuckDB's pool).
	MemoryLimit string
	// Backup backs up the running server at url into dir with the
	// operator's key, and Restore builds a data directory from it,
	// checking it was signed by the server's audit key (pubkey, in text
	// form); nil skips the midway backup and restore.
	Backup  func(ctx context.Context, url, operatorKey, dir string) error
	Restore func(ctx context.Context, from, data, pubkey string) error
	// Log receives progress and every invariant failure's message.
	Log io.Writer
	// Keep leaves the data directories and the server's log.
	Keep bool
}

// SoakResult is what `cleanroom bench soak` prints, as one JSON line.
type SoakResult struct {
	Seed    uint64  `json:"seed"`
	Minutes float64 `json:"minutes"`
	// Operations are the requests that succeeded, by kind.
	Operations map[string]int64 `json:"operations"`
	// Refused are the refusals clients met, by kind and code
	// (budget_exhausted, stale_match, awaiting_upload...): expected
	// answers of a clean room under this load, not failures.
	Refused map[string]int64 `json:"refused"`
	// Unreachable counts requests that found no server (refused or cut
	// connections while it was down) and were retried.
	Unreachable int64 `json:"unreachable_retries"`
	// ServerErrors are 5xx answers by route and code, retried.
	ServerErrors map[string]int64 `json:"server_errors"`
	// Answers are released query answers (cached ones included), per
	// second of the run.
	Answers          int64   `json:"answers"`
	AnswersPerSecond float64 `json:"answers_per_second"`
	// LatencyMs is each route's p50 and p99 in milliseconds, over the
	// requests the server answered.
	LatencyMs         map[string]Percentiles `json:"latency_ms"`
	Restarts          int                    `json:"restarts"`
	InvariantChecks   int                    `json:"invariant_checks"`
	InvariantFailures int                    `json:"invariant_failures"`
	PeakRSSBytes      int64                  `json:"peak_rss_bytes"`
	RSSLimitBytes     int64                  `json:"rss_limit_bytes"`
	// Backup says how the midway backup and restore went: "ok", "ok,
	// switched" (the server then ran on the restored directory), or why
	// it was skipped.
	Backup  string `json:"backup"`
	KeptDir string `json:"kept_dir,omitempty"`
	// Failures are the invariant failures' messages (also on the log).
	Failures []string `json:"-"`
}

// Percentiles of a route's latency.
type Percentiles struct {
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Count int     `json:"n"`
}

// The soak's clean room: three partners, each pair in a collaboration.
var soakPartners = []string{"Brand", "Publisher", "Retailer"}

const (
	soakPool   = 600 // people a party may upload, in each collaboration
	soakMinUps = 100 // the rules' min_upload_users
)

type soakParty struct {
	partner int // index in soakPartners
	key     *psi.Key
	first   int // people [first, first+soakPool)
}

type soakCollab struct {
	id      string
	members [2]string // partner IDs, proposer first
	parties [2]soakParty
	budget  wire.Amount
	// questions analysts of either party ask.
	questions []string
}

type soakAnalyst struct {
	c        *client.Client
	keyID    string
	partner  int
	epsilons []float64
}

type soak struct {
	o       SoakOptions
	dir     string
	data    string
	addr    string
	url     string
	opKey   string
	pubKey  string
	collabs []*soakCollab
	info    map[string]collabInfo
	op      *client.Client
	admins  []*client.Client
	engs    []*client.Client
	ids     []string // partner IDs
	analyst []soakAnalyst

	srvMu sync.Mutex
	srv   *exec.Cmd
	pid   int
	gone  chan struct{} // closed once the server's process has been waited for

	mu          sync.Mutex
	epoch       int // bumped when the server's state goes back (restored from a backup)
	told        seen
	ops         map[string]int64
	refused     map[string]int64
	serverErrs  map[string]int64
	unreachable int64
	lat         map[string][]float64
	answers     int64
	failures    []string
	checks      int
	peakRSS     int64
	rssOver     bool
}

// errOutcome is a client-side outcome that is not the server's answer
// (a match that kept going stale): counted, not retried.
type errOutcome string

func (e errOutcome) Error() string { return string(e) }

// RunSoak runs a server under mixed load from concurrent clients for
// o.Duration, killing it (SIGKILL) and restarting it at random moments,
// and checks the invariants after each restart and at the end.
func RunSoak(ctx context.Context, o SoakOptions) (SoakResult, error) {
	if o.Duration <= 0 || len(o.Server) == 0 {
		return SoakResult{}, errors.New("bench.RunSoak: need a duration and a server command")
	}
	if o.KillMin <= 0 || o.KillMax < o.KillMin {
		o.KillMin, o.KillMax = 20*time.Second, 40*time.Second
		if o.Duration < 10*time.Minute {
			// A short run (make test's minute) still restarts a few times.
			o.KillMin, o.KillMax = max(o.Duration/8, 3*time.Second), max(o.Duration/4, 5*time.Second)
		}
	}
	if o.RSSLimitBytes <= 0 {
		o.RSSLimitBytes = 1 << 30
	}
	if o.MemoryLimit == "" {
		o.MemoryLimit = "512MiB"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	s := &soak{o: o, ops: map[string]int64{}, refused: map[string]int64{}, serverErrs: map[string]int64{}, lat: map[string][]float64{}}
	res := SoakResult{Seed: o.Seed, RSSLimitBytes: o.RSSLimitBytes, Backup: "skipped: no backup command"}
	dir, err := os.MkdirTemp("", "cleanroom-bench-soak-")
	if err != nil {
		return res, err
	}
	s.dir = dir
	if o.Keep {
		res.KeptDir = dir
	} else {
		defer os.RemoveAll(dir)
	}
	s.data = filepath.Join(dir, "data")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	s.addr = l.Addr().String()
	l.Close()
	s.url = "http://" + s.addr
	s.logf("soak: seed %d, %v, a kill every %v to %v, server RSS bound %d MiB", o.Seed, o.Duration, o.KillMin, o.KillMax, o.RSSLimitBytes>>20)

	if err := s.start(ctx); err != nil {
		return res, err
	}
	defer s.kill()
	key, err := os.ReadFile(filepath.Join(s.data, "operator-admin.key"))
	if err != nil {
		return res, err
	}
	s.opKey = strings.TrimSpace(string(key))
	s.op = client.New(s.url, s.opKey)
	if err := s.setup(ctx); err != nil {
		return res, fmt.Errorf("setting up the clean room: %w", err)
	}

	t0 := time.Now()
	end := t0.Add(o.Duration)
	rng := rand.New(rand.NewPCG(o.Seed, 0))
	wctx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	s.workers(wctx, &wg)
	rssDone := make(chan struct{})
	go s.sampleRSS(wctx, rssDone)

	backupAt := t0.Add(o.Duration / 2)
	backedUp := o.Backup == nil || o.Restore == nil
	restarts := 0
	var prevOrphans []string
	var headSeq int64
	for {
		wait := o.KillMin + time.Duration(rng.Int64N(int64(o.KillMax-o.KillMin)+1))
		if time.Now().Add(wait).After(end) {
			break
		}
		if !backedUp && time.Now().Add(wait).After(backupAt) {
			sleepCtx(ctx, time.Until(backupAt))
			res.Backup = s.backupRestore(ctx, &prevOrphans, &headSeq)
			backedUp = true
			restarts++ // the switch to the restored directory is one
			checks, fails := s.tally()
			s.logf("soak: %s backup %s (restart %d): %d checks, %d failures", time.Since(t0).Round(time.Second), res.Backup, restarts, checks, fails)
			continue
		}
		if !sleepCtx(ctx, wait) {
			break
		}
		s.kill()
		restarts++
		s.checkDown(ctx, fmt.Sprintf("after kill %d", restarts), &prevOrphans, &headSeq, false)
		if err := s.start(ctx); err != nil {
			s.fail("restart %d: %v", restarts, err)
			break
		}
		headSeq = s.checkUp(ctx, fmt.Sprintf("after restart %d", restarts), headSeq, false)
		checks, fails := s.tally()
		s.logf("soak: %s restart %d: %d checks, %d failures", time.Since(t0).Round(time.Second), restarts, checks, fails)
	}
	sleepCtx(ctx, time.Until(end))
	stopWorkers()
	wg.Wait()
	<-rssDone
	// What the clients gave up on may still be finishing on the server.
	sleepCtx(ctx, 2*time.Second)
	elapsed := time.Since(t0)

	// At rest: the budget route's spend equals the log's to the unit.
	s.checkUp(ctx, "at the end", headSeq, true)
	s.stop()
	s.checkDown(ctx, "at the end", &prevOrphans, &headSeq, true)

	s.mu.Lock()
	defer s.mu.Unlock()
	res.Minutes = elapsed.Minutes()
	res.Operations, res.Refused, res.ServerErrors, res.Unreachable = s.ops, s.refused, s.serverErrs, s.unreachable
	res.Answers = s.answers
	res.AnswersPerSecond = float64(s.answers) / elapsed.Seconds()
	res.LatencyMs = map[string]Percentiles{}
	for route, ms := range s.lat {
		slices.Sort(ms)
		res.LatencyMs[route] = Percentiles{P50: pct(ms, 0.50), P99: pct(ms, 0.99), Count: len(ms)}
	}
	res.Restarts, res.InvariantChecks, res.InvariantFailures = restarts, s.checks, len(s.failures)
	res.PeakRSSBytes, res.Failures = s.peakRSS, s.failures
	return res, nil
}

func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	v := sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
	return float64(int64(v*10+0.5)) / 10
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// tally is the checks run and the failures found so far.
func (s *soak) tally() (checks, failures int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checks, len(s.failures)
}

func (s *soak) logf(format string, args ...any) {
	fmt.Fprintf(s.o.Log, format+"\n", args...)
}

// fail records an invariant failure.
func (s *soak) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.failures = append(s.failures, msg)
	s.mu.Unlock()
	s.logf("INVARIANT FAILURE: %s", msg)
}

// start starts the server on s.data and waits until it is ready.
func (s *soak) start(ctx context.Context) error {
	args := append(slices.Clone(s.o.Server[1:]), "--data", s.data, "--addr", s.addr, "--memory-limit", s.o.MemoryLimit, "--shutdown-timeout", "5s")
	logFile, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child keeps its own descriptor
	var last error
	// The port the old server freed could be taken for a moment, or the
	// old process not quite gone: a start that exits at once is retried.
	for range 5 {
		cmd := exec.Command(s.o.Server[0], args...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting the server: %w", err)
		}
		exited, gone := make(chan error, 1), make(chan struct{})
		go func() { exited <- cmd.Wait(); close(gone) }()
		s.srvMu.Lock()
		s.srv, s.pid, s.gone = cmd, cmd.Process.Pid, gone
		s.srvMu.Unlock()
		ready := false
		for deadline := time.Now().Add(120 * time.Second); !ready && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			select {
			case err := <-exited:
				last = fmt.Errorf("the server exited while starting: %v (its log: server.log)", err)
				deadline = time.Time{}
				continue
			default:
			}
			code, err := httpGet(ctx, s.url+"/readyz")
			ready = err == nil && code == 200
		}
		if ready {
			return nil
		}
		if last == nil {
			cmd.Process.Kill()
			<-exited
			return errors.New("the server did not become ready in 120 s")
		}
		s.srvMu.Lock()
		s.srv, s.pid = nil, 0
		s.srvMu.Unlock()
		time.Sleep(time.Second)
	}
	return last
}

// kill SIGKILLs the server and waits for it to be gone.
func (s *soak) kill() { s.signal(syscall.SIGKILL) }

// stop stops the server gracefully (SIGTERM).
func (s *soak) stop() { s.signal(syscall.SIGTERM) }

func (s *soak) signal(sig syscall.Signal) {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv == nil || s.srv.Process == nil {
		return
	}
	if hwm := peakRSSOf(s.pid); hwm > 0 {
		s.noteRSS(hwm)
	}
	s.srv.Process.Signal(sig)
	// Waited for, every thread is gone and with them the database's
	// lock (the main thread alone may be a zombie while others exit).
	select {
	case <-s.gone:
	case <-time.After(60 * time.Second):
		s.srv.Process.Kill()
		<-s.gone
	}
	s.srv, s.pid = nil, 0
}

func (s *soak) noteRSS(v int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peakRSS = max(s.peakRSS, v)
}

// sampleRSS reads the server's resident memory every half second.
func (s *soak) sampleRSS(ctx context.Context, done chan struct{}) {
	defer close(done)
	for sleepCtx(ctx, 500*time.Millisecond) {
		s.srvMu.Lock()
		pid := s.pid
		s.srvMu.Unlock()
		if pid == 0 {
			continue
		}
		rss := statusField(pid, "VmRSS:")
		if rss <= 0 {
			continue
		}
		s.noteRSS(rss)
		s.mu.Lock()
		over := rss > s.o.RSSLimitBytes && !s.rssOver
		if over {
			s.rssOver = true // once: a server over its bound stays so for a while
		}
		s.mu.Unlock()
		if over {
			s.fail("server RSS %d MiB is over the bound of %d MiB", rss>>20, s.o.RSSLimitBytes>>20)
		}
	}
}

// statusField reads a kB field of /proc/PID/status, in bytes.
func statusField(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return -1
}

// call runs one request (or a client-side sequence of them), retrying
// while no server answers: a refused or cut connection is what a
// restart looks like, and so is a 5xx with a code. It records the
// route's latency for every answer the server gave, and the outcome.
func (s *soak) call(ctx context.Context, route string, fn func() error) error {
	for tries := 0; ; tries++ {
		t := time.Now()
		err := fn()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ce *client.Error
		var out errOutcome
		switch {
		case err == nil:
			s.record(route, t, "")
			return nil
		case errors.As(err, &out):
			s.count(s.refused, route+":"+string(out))
			return err
		case errors.As(err, &ce) && ce.Status >= 500:
			s.record(route, t, "")
			code := string(ce.Code)
			if code == "" || ce.Code == wire.CodeInternal {
				// Every failure a caller may act on has its code; a 500
				// without one (or "internal", an error of no kind) is a
				// fault the server only logged.
				s.fail("%s: %d %s: %s", route, ce.Status, cmp.Or(code, "without an error code"), ce.Message)
				code = cmp.Or(code, "none")
			}
			s.count(s.serverErrs, route+":"+code)
		case errors.As(err, &ce):
			s.record(route, t, "")
			s.count(s.refused, route+":"+string(ce.Code))
			return err
		default:
			s.mu.Lock()
			s.unreachable++
			s.mu.Unlock()
		}
		if tries > 1200 { // ten minutes without an answer
			s.fail("%s: no answer for ten minutes: %v", route, err)
			return err
		}
		if !sleepCtx(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func (s *soak) record(route string, t time.Time, _ string) {
	ms := float64(time.Since(t).Microseconds()) / 1000
	s.mu.Lock()
	s.lat[route] = append(s.lat[route], ms)
	s.mu.Unlock()
}

func (s *soak) count(m map[string]int64, k string) {
	s.mu.Lock()
	m[k]++
	s.mu.Unlock()
}

// tell records what a client was given, unless the server's state went
// back (a restore) since the request began.
func (s *soak) tell(epoch int, f func(*seen)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch == s.epoch {
		f(&s.told)
	}
}

func (s *soak) curEpoch() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

func (s *soak) told0() seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return seen{Answers: slices.Clone(s.told.Answers), Matches: slices.Clone(s.told.Matches),
		Uploads: slices.Clone(s.told.Uploads), Receipts: slices.Clone(s.told.Receipts)}
}

// setup creates the partners, their keys and three collaborations (each
// pair of partners), uploads every party's first table and matches each.
func (s *soak) setup(ctx context.Context) error {
	for _, name := range soakPartners {
		cp, err := s.op.CreatePartner(ctx, name)
		if err != nil {
			return err
		}
		admin := client.New(s.url, cp.Secret)
		k, err := admin.CreateKey(ctx, cp.Partner.ID, "engineer", "soak")
		if err != nil {
			return err
		}
		s.ids = append(s.ids, cp.Partner.ID)
		s.admins = append(s.admins, admin)
		s.engs = append(s.engs, client.New(s.url, k.Secret))
		// Two analysts a partner, asking at different epsilons.
		for i, eps := range [][]float64{{0.05, 0.1}, {0.3, 0.5}} {
			ak, err := admin.CreateKey(ctx, cp.Partner.ID, "analyst", fmt.Sprintf("analyst %d", i+1))
			if err != nil {
				return err
			}
			s.analyst = append(s.analyst, soakAnalyst{c: client.New(s.url, ak.Secret), keyID: ak.Key.ID, partner: len(s.ids) - 1, epsilons: eps})
		}
	}
	s.info = map[string]collabInfo{}
	pairs := [][2]int{{0, 1}, {0, 2}, {1, 2}}
	for i, pr := range pairs {
		x, y := prefix(soakPartners[pr[0]]), prefix(soakPartners[pr[1]])
		// The first collaboration's budget runs out within minutes, so
		// concurrent charges meet its edge; the others last the run.
		budget := 1e6
		if i == 0 {
			budget = 6
		}
		rules := map[string]any{
			"purpose": "measurement", "dimensions": []string{x + "_region", y + "_region"},
			"metrics":          map[string][2]float64{x + "_spend": {0, 100}, y + "_spend": {0, 100}},
			"min_upload_users": soakMinUps, "min_cohort_users": 30, "min_group_users": 10,
			"epsilon_budget": budget, "delta_budget": 0.5, "max_query_epsilon": 1,
		}
		rj, _ := json.Marshal(rules)
		co, err := s.admins[pr[0]].Propose(ctx, fmt.Sprintf("soak %d", i+1), s.ids[pr[1]], rj)
		if err != nil {
			return err
		}
		if co, err = s.admins[pr[1]].Approve(ctx, co.ID, co.RulesVersion); err != nil {
			return err
		}
		sc := &soakCollab{id: co.ID, members: [2]string{s.ids[pr[0]], s.ids[pr[1]]}, budget: budgetUnits(co.Rules)}
		for j, p := range pr {
			k, err := psi.GenerateKey(nil)
			if err != nil {
				return err
			}
			// The two parties share half their pools: people
			// [base+300, base+600) are in both.
			sc.parties[j] = soakParty{partner: p, key: k, first: i*10000 + j*soakPool/2}
		}
		sc.questions = []string{
			`SELECT COUNT(*) FROM cohort`,
			`SELECT ` + x + `_region, COUNT(*) FROM cohort GROUP BY ` + x + `_region`,
			`SELECT ` + y + `_region, SUM(` + y + `_spend) FROM cohort GROUP BY ` + y + `_region`,
			`SELECT AVG(` + x + `_spend) FROM cohort WHERE ` + y + `_region IN ('r1', 'r2')`,
			`SELECT ` + x + `_region, ` + y + `_region, COUNT(*), AVG(` + y + `_spend) FROM cohort GROUP BY ` + x + `_region, ` + y + `_region`,
		}
		s.collabs = append(s.collabs, sc)
		s.info[co.ID] = collabInfo{Members: sc.members[:], Budget: sc.budget}
	}
	rng := rand.New(rand.NewPCG(s.o.Seed, 1))
	for _, c := range s.collabs {
		for j := range c.parties {
			if err := s.upload(ctx, rng, c, j, false); err != nil {
				return err
			}
		}
		if err := s.match(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// prefix is how the cohort names a partner's columns.
func prefix(name string) string { return strings.ReplaceAll(strings.ToLower(name), " ", "_") }

// email is person k's identifier.
func email(k int) string { return "person" + strconv.Itoa(k) + "@example.com" }

// upload replaces (or first uploads) party j's table in c with a random
// 70 to 100% of its pool: a region, a spend and consent (one in ten
// consented to another purpose only).
func (s *soak) upload(ctx context.Context, rng *rand.Rand, c *soakCollab, j int, replace bool) error {
	p := c.parties[j]
	var csv bytes.Buffer
	csv.WriteString("email,region,spend,consent\n")
	keep := 0.7 + 0.3*rng.Float64()
	for k := p.first; k < p.first+soakPool; k++ {
		if rng.Float64() > keep {
			continue
		}
		consent := "measurement"
		if k%10 == 3 {
			consent = "marketing"
		}
		fmt.Fprintf(&csv, "%s,r%d,%d,%s\n", email(k), rng.IntN(5), rng.IntN(100), consent)
	}
	var arrow bytes.Buffer
	// A cache for this table's few hundred people, not the default 256
	// MiB, which every upload would allocate afresh.
	if _, err := audience.EncodeCSV(ctx, &csv, &arrow, p.key, audience.EncodeOptions{IDColumn: "email", IDType: psi.Email, ConsentColumn: "consent",
		CacheBytes: 1 << 20}); err != nil {
		return err
	}
	epoch := s.curEpoch()
	var a wire.Audience
	err := s.call(ctx, "upload", func() error {
		var err error
		a, err = s.engs[p.partner].UploadTable(ctx, c.id, bytes.NewReader(arrow.Bytes()), client.UploadOptions{Key: p.key, Replace: replace})
		return err
	})
	if err == nil {
		s.count(s.ops, "upload")
		s.tell(epoch, func(t *seen) { t.Uploads = append(t.Uploads, seenRef{c.id, a.ID}) })
	}
	return err
}

// match runs both parties' halves of a match in c at once.
func (s *soak) match(ctx context.Context, c *soakCollab) error {
	epoch := s.curEpoch()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	ms := make([]wire.Match, 2)
	mctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for j, p := range c.parties {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[j] = s.call(mctx, "match", func() error {
				m, err := s.engs[p.partner].DoMatch(mctx, c.id, p.key, client.MatchOptions{Poll: 100 * time.Millisecond})
				ms[j] = m
				if err != nil && client.CodeOf(err) == "" && strings.Contains(err.Error(), "went stale") {
					return errOutcome("stale")
				}
				return err
			})
			if errs[j] != nil {
				cancel() // the other half would wait for this one
			}
		}()
	}
	wg.Wait()
	for j := range ms {
		if errs[j] == nil && ms[j].State == wire.MatchDone {
			s.count(s.ops, "match")
			m := ms[j]
			s.tell(epoch, func(t *seen) { t.Matches = append(t.Matches, seenRef{c.id, m.ID}) })
		}
	}
	return errors.Join(errs...)
}

// workers starts the load: an uploader, a matcher per collaboration,
// analysts, a deleter and an auditor, each with its own seeded stream.
func (s *soak) workers(ctx context.Context, wg *sync.WaitGroup) {
	run := func(stream uint64, f func(rng *rand.Rand)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(s.o.Seed, stream))
			for ctx.Err() == nil {
				f(rng)
			}
		}()
	}
	run(10, func(rng *rand.Rand) { // uploads, each replacing the party's table
		c := s.collabs[rng.IntN(len(s.collabs))]
		s.upload(ctx, rng, c, rng.IntN(2), true)
		sleepCtx(ctx, time.Duration(2000+rng.IntN(4000))*time.Millisecond)
	})
	for i, c := range s.collabs {
		run(20+uint64(i), func(rng *rand.Rand) {
			s.match(ctx, c)
			sleepCtx(ctx, time.Duration(500+rng.IntN(2500))*time.Millisecond)
		})
	}
	for i := range 3 {
		run(30+uint64(i), func(rng *rand.Rand) {
			s.query(ctx, rng)
			sleepCtx(ctx, time.Duration(20+rng.IntN(150))*time.Millisecond)
		})
	}
	run(40, func(rng *rand.Rand) {
		s.deleteSome(ctx, rng)
		sleepCtx(ctx, time.Duration(1500+rng.IntN(3000))*time.Millisecond)
	})
	run(50, func(rng *rand.Rand) {
		s.read(ctx, rng)
		sleepCtx(ctx, time.Duration(2000+rng.IntN(4000))*time.Millisecond)
	})
}

// query asks one of a collaboration's questions as one of its analysts,
// at one of the analyst's epsilons; repeats are answered from the cache.
func (s *soak) query(ctx context.Context, rng *rand.Rand) {
	a := s.analyst[rng.IntN(len(s.analyst))]
	var mine []*soakCollab
	for _, c := range s.collabs {
		if c.parties[0].partner == a.partner || c.parties[1].partner == a.partner {
			mine = append(mine, c)
		}
	}
	c := mine[rng.IntN(len(mine))]
	q := c.questions[rng.IntN(len(c.questions))]
	eps := a.epsilons[rng.IntN(len(a.epsilons))]
	epoch := s.curEpoch()
	var body bytes.Buffer
	err := s.call(ctx, "query", func() error {
		body.Reset()
		return a.c.Ask(ctx, c.id, wire.Request{SQL: q, Epsilon: eps}, "json", &body)
	})
	if err != nil {
		return
	}
	ans, sum, err := answerSHA256(body.Bytes())
	if err != nil {
		s.fail("query: an answer that does not decode: %v", err)
		return
	}
	kind := "query"
	if ans.Cached {
		kind = "query_cached"
	}
	s.count(s.ops, kind)
	s.mu.Lock()
	s.answers++
	s.mu.Unlock()
	s.tell(epoch, func(t *seen) {
		t.Answers = append(t.Answers, seenAnswer{Collab: c.id, Actor: a.keyID, PlanHash: ans.PlanHash, Version: ans.CohortVersion,
			Epsilon: ans.Epsilon, Cached: ans.Cached, AnswerSHA256: sum})
	})
}

// deleteSome deletes or opts out one to three people of a party, or,
// rarely, deletes the party's whole table.
func (s *soak) deleteSome(ctx context.Context, rng *rand.Rand) {
	c := s.collabs[rng.IntN(len(s.collabs))]
	p := c.parties[rng.IntN(2)]
	eng := s.engs[p.partner]
	epoch := s.curEpoch()
	if rng.IntN(20) == 0 {
		var list wire.AudienceList
		if s.call(ctx, "audiences", func() error { var err error; list, err = eng.Audiences(ctx, c.id); return err }) != nil {
			return
		}
		for _, a := range list.Audiences {
			if a.PartnerID != s.ids[p.partner] {
				continue
			}
			var r audit.Receipt
			if s.call(ctx, "delete_table", func() error { var err error; r, err = eng.DeleteAudience(ctx, c.id, a.ID); return err }) == nil {
				s.count(s.ops, "delete_table")
				s.tell(epoch, func(t *seen) { t.Receipts = append(t.Receipts, seenRef{c.id, r.ID}) })
			}
		}
		return
	}
	var ids []string
	for range 1 + rng.IntN(3) {
		ids = append(ids, email(p.first+rng.IntN(soakPool)))
	}
	var pts []psi.Point
	if s.call(ctx, "blind", func() error { var err error; pts, err = eng.BlindIDs(ctx, c.id, p.key, "", "", ids); return err }) != nil {
		return
	}
	optOut := rng.IntN(3) == 0
	kind := map[bool]string{false: "deletion", true: "optout"}[optOut]
	var r audit.Receipt
	if s.call(ctx, kind, func() error { var err error; r, err = eng.DeleteIDs(ctx, c.id, p.key, pts, optOut); return err }) == nil {
		s.count(s.ops, kind)
		s.tell(epoch, func(t *seen) { t.Receipts = append(t.Receipts, seenRef{c.id, r.ID}) })
	}
}

// read is an auditor's and a reader's round: the operator's audit
// export (verified), a collaboration's transparency report, a partner's
// privacy report and the budgets (never negative).
func (s *soak) read(ctx context.Context, rng *rand.Rand) {
	switch rng.IntN(4) {
	case 0:
		var buf bytes.Buffer
		if s.call(ctx, "audit_export", func() error { buf.Reset(); return s.op.AuditExport(ctx, &buf) }) != nil {
			return
		}
		s.count(s.ops, "audit_export")
		s.verifyExport(ctx, "audit export under load", buf.Bytes())
	case 1:
		c := s.collabs[rng.IntN(len(s.collabs))]
		if s.call(ctx, "report", func() error { _, err := s.admins[c.parties[rng.IntN(2)].partner].Report(ctx, c.id); return err }) == nil {
			s.count(s.ops, "report")
		}
	case 2:
		i := rng.IntN(len(s.ids))
		if s.call(ctx, "privacy_report", func() error {
			_, err := s.admins[i].PrivacyReport(ctx, s.ids[i], time.Time{}, time.Time{})
			return err
		}) == nil {
			s.count(s.ops, "privacy_report")
		}
	case 3:
		c := s.collabs[rng.IntN(len(s.collabs))]
		var st wire.BudgetStatus
		if s.call(ctx, "budget", func() error { return s.budget(ctx, c.id, &st) }) == nil {
			s.count(s.ops, "budget")
			if _, err := spentFromBudget(st); err != nil {
				s.fail("budget of collaboration %s: %v", c.id, err)
			}
		}
	}
}

func (s *soak) budget(ctx context.Context, cid string, st *wire.BudgetStatus) error {
	raw, err := s.op.Budget(ctx, cid)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, st)
}

// verifyExport checks an export's signatures and hash chain against the
// server's public key, and returns its entries (nil when it fails).
func (s *soak) verifyExport(ctx context.Context, when string, b []byte) ([]audit.Entry, audit.Head) {
	entries, head, err := audit.ReadExport(bytes.NewReader(b))
	if err != nil {
		s.fail("%s: the export does not parse: %v", when, err)
		return nil, head
	}
	var pk string
	if err := s.call(ctx, "audit_pubkey", func() error { var err error; pk, err = s.op.AuditPublicKey(ctx); return err }); err != nil {
		return nil, head
	}
	pub, err := audit.ParsePublicKey(pk)
	if err != nil {
		s.fail("%s: the server's public key: %v", when, err)
		return nil, head
	}
	if err := audit.Verify(entries, head, pub); err != nil {
		s.fail("%s: the audit export does not verify: %v", when, err)
		return nil, head
	}
	return entries, head
}

// checkDown checks the stopped server's database: the ledger against the
// log, budgets, every answer, match, upload and receipt a client was
// given, complete audiences and cohorts, and orphan tables. Orphans right
// after a kill are expected (work in flight) but must not outlive the
// start that follows (cohort.Cleanup); after a graceful stop there must
// be none.
func (s *soak) checkDown(ctx context.Context, when string, prevOrphans *[]string, headSeq *int64, final bool) {
	told := s.told0()
	s.mu.Lock()
	s.checks++
	s.mu.Unlock()
	snap, err := readSnapshot(ctx, s.data)
	if err != nil {
		s.fail("%s: reading the database: %v", when, err)
		return
	}
	for _, f := range checkLog(snap, told) {
		s.fail("%s: %s", when, f)
	}
	fails, orphans := checkTables(snap)
	for _, f := range fails {
		s.fail("%s: %s", when, f)
	}
	for _, o := range orphans {
		if final || slices.Contains(*prevOrphans, o) {
			s.fail("%s: orphan table %s (no record points to it) survived a start", when, o)
		}
	}
	*prevOrphans = orphans
	if n := int64(len(snap.Entries)); n < *headSeq {
		s.fail("%s: the log has %d entries; the server had exported a head at %d", when, n, *headSeq)
	}
	for i, e := range snap.Entries {
		if e.Seq != int64(i)+1 {
			s.fail("%s: audit entry %d has sequence number %d", when, i+1, e.Seq)
			break
		}
	}
	*headSeq = int64(len(snap.Entries))
}

// checkUp checks the running server through its API: the operator's
// export verifies, reaches at least the head the database held, holds
// everything a client was given, and its charges lie between the
// budget route's spend before and after it (exactly equal at rest).
func (s *soak) checkUp(ctx context.Context, when string, headSeq int64, atRest bool) int64 {
	told := s.told0()
	s.mu.Lock()
	s.checks++
	s.mu.Unlock()
	spent := func() map[string]map[string]wire.Amount {
		out := map[string]map[string]wire.Amount{}
		for _, c := range s.collabs {
			var st wire.BudgetStatus
			if err := s.call(ctx, "budget", func() error { return s.budget(ctx, c.id, &st) }); err != nil {
				s.fail("%s: budget of %s: %v", when, c.id, err)
				continue
			}
			sp, err := spentFromBudget(st)
			if err != nil {
				s.fail("%s: budget of %s: %v", when, c.id, err)
			}
			out[c.id] = sp
		}
		return out
	}
	// At rest the spend must equal the log's to the unit; work a client
	// gave up on when the load stopped may still commit for a moment, so
	// the reads are repeated until the spend holds still.
	var lo, hi map[string]map[string]wire.Amount
	var buf bytes.Buffer
	for attempt := 0; ; attempt++ {
		lo = spent()
		if err := s.call(ctx, "audit_export", func() error { buf.Reset(); return s.op.AuditExport(ctx, &buf) }); err != nil {
			s.fail("%s: audit export: %v", when, err)
			return headSeq
		}
		hi = spent()
		if !atRest || reflect.DeepEqual(lo, hi) {
			break
		}
		if attempt == 10 {
			s.logf("soak: %s: the budgets still moved after 10 s at rest; checked as under load", when)
			atRest = false
			break
		}
		sleepCtx(ctx, time.Second)
	}
	entries, head := s.verifyExport(ctx, when, buf.Bytes())
	if entries == nil {
		return headSeq
	}
	if head.Seq < headSeq {
		s.fail("%s: the export's signed head is at %d, the database held %d entries before the start", when, head.Seq, headSeq)
	}
	snap := snapshot{Entries: entries, Collabs: s.info}
	if atRest {
		snap.Spent = lo
	}
	for _, f := range checkLog(snap, told) {
		s.fail("%s: %s", when, f)
	}
	if !atRest {
		for _, f := range checkSpendBetween(lo, hi, logSpent(entries, s.info)) {
			s.fail("%s: %s", when, f)
		}
	}
	return head.Seq
}

// backupRestore backs the server up under load, restores the backup to
// a new data directory and checks it as a stopped server's database
// (holding everything a client was given before the backup began), then
// moves the server onto it: a kill, and a start on the restored data.
func (s *soak) backupRestore(ctx context.Context, prevOrphans *[]string, headSeq *int64) string {
	before := s.told0()
	epoch := s.curEpoch()
	bdir := filepath.Join(s.dir, "backup")
	restored := filepath.Join(s.dir, "restored")
	s.logf("soak: backup under load")
	t0 := time.Now()
	if err := s.o.Backup(ctx, s.url, s.opKey, bdir); err != nil {
		s.fail("backup under load: %v", err)
		return "failed"
	}
	s.record("backup", t0, "")
	var pk string
	if err := s.call(ctx, "audit_pubkey", func() error { var err error; pk, err = s.op.AuditPublicKey(ctx); return err }); err != nil {
		s.fail("the audit public key before the restore: %v", err)
		return "failed"
	}
	if err := s.o.Restore(ctx, bdir, restored, pk); err != nil {
		s.fail("restore: %v", err)
		return "failed"
	}
	s.mu.Lock()
	s.checks++
	s.mu.Unlock()
	snap, err := readSnapshot(ctx, restored)
	if err != nil {
		s.fail("reading the restored database: %v", err)
		return "failed"
	}
	fails := checkLog(snap, before)
	tf, orphans := checkTables(snap)
	fails = append(fails, tf...)
	// The snapshot holds what was in flight as it was taken (a match
	// half being received, an upload being scanned), as a kill leaves
	// it: no record points to it, and the first start drops it, which
	// the next check after a kill verifies.
	if len(orphans) > 0 {
		s.logf("soak: the restored database holds %d tables in flight at the backup (%s), for its first start to drop", len(orphans), strings.Join(orphans, ", "))
	}
	for _, f := range fails {
		s.fail("restored backup: %s", f)
	}
	if len(fails) > 0 {
		return "failed"
	}
	// The restored state is the backup's: what clients were told since
	// it began is not in it, and no longer expected.
	s.kill()
	s.mu.Lock()
	if s.epoch == epoch {
		s.told = before
	}
	s.epoch++
	s.mu.Unlock()
	s.data = restored
	*prevOrphans, *headSeq = orphans, int64(len(snap.Entries))
	if err := s.start(ctx); err != nil {
		s.fail("starting on the restored data: %v", err)
		return "failed"
	}
	*headSeq = s.checkUp(ctx, "after the switch to the restored data", *headSeq, false)
	if len(orphans) > 0 {
		return fmt.Sprintf("ok, switched (%d tables in flight at the backup, dropped at start)", len(orphans))
	}
	return "ok, switched"
}
