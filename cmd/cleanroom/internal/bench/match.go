package bench

import (
	"bufio"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// MatchOptions configure `cleanroom bench match`.
type MatchOptions struct {
	N       int // people in each audience
	Overlap int // people in both
	// Shape is ShapePeople (default: one row a person) or ShapeEvents.
	Shape string
	// Purchases and Exposures are, for ShapeEvents, the mean rows a
	// person of the brand's purchases and the publisher's exposures, at
	// least 1; 0 is DefaultPurchases and DefaultExposures.
	Purchases, Exposures float64
	// BlindCacheBytes is each upload's audience.EncodeOptions.CacheBytes:
	// 0 is its default, negative blinds every row.
	BlindCacheBytes int64
	// Server is the command line that starts the server; the benchmark
	// appends --data DIR --addr HOST:PORT.
	Server []string
	// SkipPSI leaves out the in-process psi baseline (for tests).
	SkipPSI bool
	// Keep leaves the database and the server's log in KeptDir.
	Keep bool
	// Runs is how many times the match and then psi run, alternately;
	// default 1. The vCPUs' speed drifts by tens of percent between
	// minutes: pairs and a median steady the ratio.
	Runs int
	Log  func(stage string, d time.Duration)
}

// MatchResult is what `cleanroom bench match` prints.
type MatchResult struct {
	N        int   `json:"n"`
	Expected int64 `json:"expected"`
	// Found is the exact cohort size read from the store after the run,
	// not from the API (which only gives a noisy size).
	Found int64 `json:"found"`
	// Seconds runs from both parties starting their uploads to both
	// having the cohort: normalize, hash, blind, upload, match, cohort.
	Seconds float64 `json:"seconds"`
	// PSISeconds is RunPSI for the same n in the same run: the same
	// cryptography with no server.
	PSISeconds float64 `json:"psi_seconds"`
	Ratio      float64 `json:"ratio"`
	CohortRows int64   `json:"cohort_rows"`
	// CohortRowsPerSec is CohortRows / Seconds.
	CohortRowsPerSec   float64 `json:"cohort_rows_per_sec"`
	ServerPeakRSSBytes int64   `json:"server_peak_rss_bytes"`
	// ServerCPUSeconds is the server process's user and system time: its
	// share of the two cores the parties' cryptography also needs.
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	KeptDir          string  `json:"kept_dir,omitempty"`
	NoisySize        int64   `json:"cohort_size_noisy"`
	Shape            string  `json:"shape"`
	// Tables are each party's uploads, the brand's first: rows sent,
	// stored and linked.
	Tables []TableRows `json:"tables"`
	// LargestStoredTableRows is the most rows of any table in the
	// database after the match (duckdb_tables(), each counted), and
	// LargestStoredTable its name.
	LargestStoredTable     string `json:"largest_stored_table"`
	LargestStoredTableRows int64  `json:"largest_stored_table_rows"`
	// BytesPerUploadedRow is the database file's size after the match
	// over the rows uploaded to all tables.
	BytesPerUploadedRow float64 `json:"bytes_per_uploaded_row"`
	// Stages are each party's steps, as it waits on them: partyN_upload
	// (with ShapeEvents its tables one after the other, each also as
	// partyN_upload_TABLE, and "uploads" when both parties' are in, which
	// a party waits for before it matches), then partyN_match, which is
	// partyN_start (the server builds both sides' points), partyN_reblind
	// (points out and back) and partyN_cohort (waiting for the other
	// half). The later half's PUT builds the cohort before it returns:
	// the build's time is in the later party's reblind and the earlier
	// party's cohort.
	Stages map[string]float64 `json:"stage_seconds"`
	// Runs, when there were several, are each run's figures, by ratio.
	// The fields above are the median run's, except Found (the least)
	// and ServerPeakRSSBytes (the most).
	Runs []MatchRun `json:"runs,omitempty"`
}

// MatchRun is one of several runs of RunMatch.
type MatchRun struct {
	Seconds            float64 `json:"seconds"`
	PSISeconds         float64 `json:"psi_seconds"`
	Ratio              float64 `json:"ratio"`
	Found              int64   `json:"found"`
	ServerPeakRSSBytes int64   `json:"server_peak_rss_bytes"`
}

// RunMatch runs the whole service flow for two synthetic parties against a
// server started as its own process on loopback, so its memory is measured
// alone, then RunPSI for the same sizes; o.Runs times, alternately.
func RunMatch(ctx context.Context, o MatchOptions) (MatchResult, error) {
	if o.N <= 0 || o.Overlap < 0 || o.Overlap > o.N {
		return MatchResult{}, fmt.Errorf("bench.RunMatch: need 0 <= overlap (%d) <= n (%d), n > 0", o.Overlap, o.N)
	}
	if o.Shape == "" {
		o.Shape = ShapePeople
	}
	if o.Shape != ShapePeople && o.Shape != ShapeEvents {
		return MatchResult{}, fmt.Errorf("bench.RunMatch: shape %q: use %s or %s", o.Shape, ShapePeople, ShapeEvents)
	}
	o.Purchases = cmp.Or(o.Purchases, DefaultPurchases)
	o.Exposures = cmp.Or(o.Exposures, DefaultExposures)
	if !(o.Purchases >= 1) || !(o.Exposures >= 1) {
		return MatchResult{}, fmt.Errorf("bench.RunMatch: %v purchases and %v exposures a person: each must be at least 1 (everyone is in each log)", o.Purchases, o.Exposures)
	}
	if len(o.Server) == 0 {
		return MatchResult{}, errors.New("bench.RunMatch: no server command")
	}
	runs := max(o.Runs, 1)
	var all []MatchResult
	for range runs {
		res, err := runMatchOnce(ctx, o)
		if err != nil {
			return res, err
		}
		if !o.SkipPSI {
			pr, err := RunPSI(ctx, PSIOptions{NA: o.N, NB: o.N, Overlap: o.Overlap})
			if err != nil {
				return res, err
			}
			res.PSISeconds = pr.Seconds
			res.Ratio = res.Seconds / pr.Seconds
		}
		all = append(all, res)
	}
	res := medianRun(all)
	for _, r := range all {
		// -keep keeps the run reported; the others' would only fill the disk.
		if r.KeptDir != "" && r.KeptDir != res.KeptDir {
			os.RemoveAll(r.KeptDir)
		}
	}
	return res, nil
}

// medianRun reports several runs as the one with the median ratio (the
// lower middle of an even count), with every run's figures beside it.
// Each run's ratio pairs a match with the psi run just after it, so that a
// change in the machine's speed between runs moves both.
func medianRun(all []MatchResult) MatchResult {
	all = slices.Clone(all)
	slices.SortStableFunc(all, func(a, b MatchResult) int { return cmp.Compare(a.Ratio, b.Ratio) })
	res := all[(len(all)-1)/2]
	if len(all) == 1 {
		return res
	}
	for _, r := range all {
		res.Runs = append(res.Runs, MatchRun{Seconds: r.Seconds, PSISeconds: r.PSISeconds, Ratio: r.Ratio, Found: r.Found,
			ServerPeakRSSBytes: r.ServerPeakRSSBytes})
		// The worst of every run, not the median's, is what a bar needs.
		res.Found = min(res.Found, r.Found)
		res.ServerPeakRSSBytes = max(res.ServerPeakRSSBytes, r.ServerPeakRSSBytes)
	}
	return res
}

func runMatchOnce(ctx context.Context, o MatchOptions) (MatchResult, error) {
	shape := o.Shape
	tables := partyTables(o)
	res := MatchResult{N: o.N, Expected: int64(o.Overlap), Stages: map[string]float64{}, Shape: shape,
		Tables: make([]TableRows, len(tables[0])+len(tables[1]))}
	// Each party fills its own entries of res.Tables.
	offset := [2]int{0, len(tables[0])}
	logf := o.Log
	if logf == nil {
		logf = func(string, time.Duration) {}
	}
	var stageMu sync.Mutex // both parties time their stages at once
	stage := func(name string, t0 time.Time) {
		d := time.Since(t0)
		stageMu.Lock()
		res.Stages[name] = d.Seconds()
		stageMu.Unlock()
		logf(name, d)
	}
	dir, err := os.MkdirTemp("", "cleanroom-bench-match-")
	if err != nil {
		return res, err
	}
	if o.Keep {
		res.KeptDir = dir
	} else {
		defer os.RemoveAll(dir)
	}
	data := filepath.Join(dir, "data")

	srv, url, err := startServer(ctx, o.Server, data)
	if err != nil {
		return res, err
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.Process.Kill()
			srv.Wait()
		}
	}()
	opKey, err := os.ReadFile(filepath.Join(data, "operator-admin.key"))
	if err != nil {
		return res, err
	}
	op := client.New(url, strings.TrimSpace(string(opKey)))
	rules := map[string]any{"purpose": "measurement", "dimensions": []string{"brand_region"}}
	if shape == ShapeEvents {
		var decl []wire.TableRule
		for _, t := range eventTables(o.Purchases, o.Exposures) {
			decl = append(decl, t.rule())
		}
		rules = map[string]any{"purpose": "measurement", "tables": decl}
	}
	parties, collab, err := setupParties(ctx, op, url, rules)
	if err != nil {
		return res, err
	}

	t0 := time.Now()
	// A party that fails stops the other, which would otherwise wait for it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// With several tables a party matches only once both parties' tables
	// are all in: a match started over some of them would not be the one
	// the other party starts over all of them.
	var uploads sync.WaitGroup
	uploads.Add(len(parties))
	uploaded := make(chan struct{})
	go func() {
		uploads.Wait()
		if shape == ShapeEvents {
			stage("uploads", t0)
		}
		close(uploaded)
	}()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	noisy := make([]int64, 2)
	mids := make([]string, 2)
	for i, p := range parties {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Both parties have people [lo, hi).
			first, lo, hi := 0, o.N-o.Overlap, o.N
			if i == 1 {
				first = lo
			}
			t := time.Now()
			err := func() error {
				defer uploads.Done()
				for j, bt := range tables[i] {
					tt := time.Now()
					tr, err := uploadSynthetic(ctx, p.eng, collab, p.key, bt, first, o.N, lo, hi, o.BlindCacheBytes)
					tr.Party = []string{wire.PartyProposer, wire.PartyPartner}[i]
					res.Tables[offset[i]+j] = tr
					if err != nil {
						return fmt.Errorf("party %d upload of %s: %w", i+1, bt.label, err)
					}
					if shape == ShapeEvents {
						stage(fmt.Sprintf("party%d_upload_%s", i+1, bt.label), tt)
					}
				}
				return nil
			}()
			if err != nil {
				errs[i] = err
				cancel()
				return
			}
			stage(fmt.Sprintf("party%d_upload", i+1), t)
			if shape == ShapeEvents {
				select {
				case <-uploaded:
				case <-ctx.Done():
					errs[i] = fmt.Errorf("party %d: waiting for the uploads: %w", i+1, ctx.Err())
					return
				}
			}
			t = time.Now()
			m, err := matchParty(ctx, p, collab, func(name string, t0 time.Time) {
				stage(fmt.Sprintf("party%d_%s", i+1, name), t0)
			})
			if err != nil {
				errs[i] = fmt.Errorf("party %d match: %w", i+1, err)
				cancel()
				return
			}
			stage(fmt.Sprintf("party%d_match", i+1), t)
			mids[i] = m.ID
			if m.NoisySize != nil {
				noisy[i] = *m.NoisySize
			}
		}()
	}
	wg.Wait()
	<-uploaded // its stage is recorded
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	res.Seconds = time.Since(t0).Seconds()
	res.NoisySize = noisy[0]
	res.ServerPeakRSSBytes = peakRSSOf(srv.Process.Pid)
	res.ServerCPUSeconds = cpuSecondsOf(srv.Process.Pid)

	// Stop the server, then read the exact size from its database.
	srv.Process.Signal(syscall.SIGTERM)
	srv.Wait()
	stopped = true
	db, err := store.Open(ctx, data)
	if err != nil {
		return res, err
	}
	err = readStore(ctx, db, mids[0], &res)
	db.Close()
	if err != nil {
		return res, fmt.Errorf("reading the cohort from the store: %w", err)
	}
	var up int64
	for _, tr := range res.Tables {
		up += tr.UploadedRows
	}
	if fi, err := os.Stat(filepath.Join(data, store.FileName)); err == nil {
		res.BytesPerUploadedRow = float64(fi.Size()) / float64(max(up, 1))
	}
	res.CohortRowsPerSec = float64(res.CohortRows) / res.Seconds

	return res, nil
}

// readStore reads from the stopped server's database the exact cohort of
// match mid, each table's stored and linked rows, and the largest table.
func readStore(ctx context.Context, db *store.DB, mid string, res *MatchResult) error {
	var people string
	err := db.SQL().QueryRowContext(ctx, `SELECT cohort_table FROM matches WHERE id = ?`, mid).Scan(&people)
	if err != nil {
		return err
	}
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(DISTINCT uid), count(*) FROM `+store.QuoteIdent(people)).Scan(&res.Found, &res.CohortRows); err != nil {
		return err
	}
	for i := range res.Tables {
		tr := &res.Tables[i]
		var table string
		var linked sql.NullInt64
		err := db.SQL().QueryRowContext(ctx, `SELECT a.table_name, t.linked_rows FROM audiences a JOIN match_tables t ON t.audience_id = a.id
			WHERE a.id = ? AND t.match_id = ?`, tr.audienceID, mid).Scan(&table, &linked)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("table %s (audience %s) is not in match %s", tr.Table, tr.audienceID, mid)
		}
		if err != nil {
			return err
		}
		if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM `+store.QuoteIdent(table)).Scan(&tr.StoredRows); err != nil {
			return err
		}
		tr.LinkedRows = linked.Int64
	}
	res.LargestStoredTable, res.LargestStoredTableRows, err = largestTable(ctx, db)
	return err
}

func startServer(ctx context.Context, argv []string, data string) (*exec.Cmd, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], "--data", data, "--addr", addr)...)
	logFile, err := os.Create(data + ".log")
	if err != nil {
		return nil, "", err
	}
	defer logFile.Close() // the child keeps its own descriptor
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("starting the server: %w", err)
	}
	url := "http://" + addr
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := httpGet(ctx, url+"/readyz")
		if err == nil && resp == 200 {
			return cmd, url, nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	log, _ := os.ReadFile(data + ".log")
	return nil, "", fmt.Errorf("the server did not become ready; its log:\n%s", log)
}

type benchParty struct {
	eng *client.Client
	key *psi.Key
}

// setupParties creates the two partners, an engineer's key and a blinding
// key for each, and a collaboration of rules (marshalled to JSON) that
// both approve.
func setupParties(ctx context.Context, op *client.Client, url string, rules any) ([]benchParty, string, error) {
	var parties []benchParty
	var admins []*client.Client
	var ids []string
	for _, name := range []string{"Brand", "Publisher"} {
		cp, err := op.CreatePartner(ctx, name)
		if err != nil {
			return nil, "", err
		}
		admin := client.New(url, cp.Secret)
		k, err := admin.CreateKey(ctx, cp.Partner.ID, "engineer", "bench")
		if err != nil {
			return nil, "", err
		}
		key, err := psi.GenerateKey(nil)
		if err != nil {
			return nil, "", err
		}
		parties = append(parties, benchParty{eng: client.New(url, k.Secret), key: key})
		admins = append(admins, admin)
		ids = append(ids, cp.Partner.ID)
	}
	rj, err := json.Marshal(rules)
	if err != nil {
		return nil, "", err
	}
	co, err := admins[0].Propose(ctx, "bench", ids[1], rj)
	if err != nil {
		return nil, "", err
	}
	if _, err := admins[1].Approve(ctx, co.ID, co.RulesVersion); err != nil {
		return nil, "", err
	}
	return parties, co.ID, nil
}

// matchParty runs a party's client.DoMatch, timing its steps: start (the
// server reads, sorts and writes both sides' points; it waits first for
// the other upload), reblind (the other side's points out, re-blinded,
// back in) and cohort (waiting for the other half and the cohort build).
func matchParty(ctx context.Context, p benchParty, collab string, stage func(string, time.Time)) (wire.Match, error) {
	t := time.Now()
	m, err := p.eng.DoMatch(ctx, collab, p.key, client.MatchOptions{Poll: 50 * time.Millisecond,
		Started: func(wire.Match) { stage("start", t); t = time.Now() },
		Sent:    func() { stage("reblind", t); t = time.Now() },
	})
	if err != nil {
		return m, err
	}
	stage("cohort", t)
	return m, nil
}

// benchTable is one table a party uploads.
type benchTable struct {
	name    string // in the rules and the upload; "" for the one table of rules that declare none
	label   string // in the result
	consent bool   // its rows have a consent column
	attrs   []audience.AttrSpec
	// write writes its CSV of people [first, first+n), counting the rows
	// of people in [lo, hi).
	write func(w io.Writer, first, n, lo, hi int) (tableCounts, error)
}

// partyTables are the tables each party uploads, in order.
func partyTables(o MatchOptions) [2][]benchTable {
	var out [2][]benchTable
	if o.Shape != ShapeEvents {
		for i := range out {
			out[i] = []benchTable{{label: "people", consent: true, write: writePeople}}
		}
		return out
	}
	for _, t := range eventTables(o.Purchases, o.Exposures) {
		out[t.party] = append(out[t.party], benchTable{name: t.name, label: t.name, consent: t.consent, attrs: t.attrs(),
			write: func(w io.Writer, first, n, lo, hi int) (tableCounts, error) {
				return writeTable(w, t, first, n, lo, hi)
			}})
	}
	return out
}

// writePeople writes ShapePeople's table: one row a person, a region and
// a spend, all consented.
func writePeople(cw io.Writer, first, n, lo, hi int) (tableCounts, error) {
	w := bufio.NewWriterSize(cw, 1<<16)
	w.WriteString("email,region,spend,consent\n")
	var b []byte
	for k := first; k < first+n; k++ {
		b = append(b[:0], "customer"...)
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, "@example.com,r"...)
		b = strconv.AppendInt(b, int64(k%8), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(k%100), 10)
		b = append(b, ",measurement\n"...)
		if _, err := w.Write(b); err != nil {
			return tableCounts{}, err
		}
	}
	return tableCounts{rows: int64(n), inRange: int64(max(0, min(hi, first+n)-max(lo, first)))}, w.Flush()
}

// uploadSynthetic writes a party's table t of people [first, first+n) and
// uploads it through the CLI's encoder, streaming end to end. The rows of
// people in [lo, hi) are the table's expected linked rows.
func uploadSynthetic(ctx context.Context, c *client.Client, collab string, key *psi.Key, t benchTable, first, n, lo, hi int, cacheBytes int64) (TableRows, error) {
	tr := TableRows{Table: t.label}
	csvR, csvW := io.Pipe()
	gen := make(chan tableCounts, 1)
	go func() {
		counts, err := t.write(csvW, first, n, lo, hi)
		csvW.CloseWithError(err)
		gen <- counts
	}()
	arrowR, arrowW := io.Pipe()
	encErr := make(chan error, 1)
	go func() {
		opts := audience.EncodeOptions{IDColumn: "email", IDType: psi.Email, Attributes: t.attrs, CacheBytes: cacheBytes}
		if t.consent {
			opts.ConsentColumn = "consent"
		}
		st, err := audience.EncodeCSV(ctx, csvR, arrowW, key, opts)
		tr.UploadedRows, tr.Blinded = st.Rows, st.Blinded
		arrowW.CloseWithError(err)
		csvR.CloseWithError(err)
		encErr <- err
	}()
	a, err := c.UploadTable(ctx, collab, arrowR, client.UploadOptions{Table: t.name, Key: key})
	arrowR.CloseWithError(errors.New("upload ended"))
	eerr := <-encErr
	csvR.CloseWithError(errors.New("upload ended")) // the generator stops if it has not
	counts := <-gen
	if eerr != nil && err == nil {
		return tr, eerr
	}
	if err != nil {
		return tr, err
	}
	if counts.rows != tr.UploadedRows {
		return tr, fmt.Errorf("%d rows written, %d encoded", counts.rows, tr.UploadedRows)
	}
	tr.StoredRows, tr.ExpectedLinkedRows, tr.audienceID = a.Rows, counts.inRange, a.ID
	return tr, nil
}

// peakRSSOf reads a process's peak resident set (VmHWM) on Linux.
func peakRSSOf(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return -1
}

// cpuSecondsOf reads a process's user plus system time on Linux, or -1.
func cpuSecondsOf(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name, in parentheses, may hold spaces: count from after it.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return float64(ut+st) / 100 // USER_HZ is 100 on Linux
}

func httpGet(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
