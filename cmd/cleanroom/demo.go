package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/api"
	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// demoOptions are the demo's flags.
type demoOptions struct {
	dir                   string
	brandN, pubN, overlap int
	quiet                 bool
	// serve keeps the server up for the console once the demo is done,
	// after leaving something for each of its views.
	serve bool
	addr  string
}

func newDemoCmd() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo [--serve]",
		Short: "The whole flow on an embedded database: two synthetic parties upload, match and get a noisy cohort size",
		Long: `demo runs a brand and a publisher through the whole flow on a server of its
own: upload, match, private queries, a verified audit log and the
transparency report.

With --serve it then keeps the server up until Ctrl-C and prints the web
console's address and an API key of each role of each partner to sign in
with. It also leaves something for every view of the console: a refused
query, deletions and opt-outs with their receipts, and a second
collaboration whose rules change awaits the publisher's approval.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.overlap > o.brandN || o.overlap > o.pubN {
				return fmt.Errorf("demo: --overlap %d is larger than an audience", o.overlap)
			}
			if o.dir == "" {
				var err error
				if o.dir, err = os.MkdirTemp("", "cleanroom-demo-"); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			if o.serve {
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
			}
			return runDemo(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	cmd.Flags().IntVar(&o.brandN, "brand", 200000, "brand customers")
	cmd.Flags().IntVar(&o.pubN, "publisher", 300000, "publisher audience")
	cmd.Flags().IntVar(&o.overlap, "overlap", 60000, "people in both")
	cmd.Flags().StringVar(&o.dir, "dir", "", "directory for the demo's files and database (default: a new temporary one)")
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "no progress bars")
	cmd.Flags().BoolVar(&o.serve, "serve", false, "keep the server up for the web console until Ctrl-C, and print a key of each role")
	cmd.Flags().StringVar(&o.addr, "addr", "127.0.0.1:0", "address the demo's server listens on (port 0: any free one)")
	return cmd
}

// consentBrand and consentPub give the demo's consent mix: some people
// did not consent to measurement, and are never matched.
func consentBrand(k int) string {
	if k%10 == 3 {
		return "marketing"
	}
	return "measurement;marketing"
}

func consentPub(k int) string {
	if k%9 == 4 {
		return ""
	}
	return "measurement"
}

// demoRoles are the roles the demo prints a key of, per partner, in order.
var demoRoles = []wire.Role{wire.Analyst, wire.Engineer, wire.Auditor, wire.Admin}

func runDemo(ctx context.Context, out, progress io.Writer, o demoOptions) error {
	dir, brandN, pubN, overlap, quiet := o.dir, o.brandN, o.pubN, o.overlap, o.quiet
	// What the demo says quotes its server (names, a refusal's message).
	say := func(format string, args ...any) { out.Write(escapeControls(fmt.Appendf(nil, format+"\n", args...))) }
	data := filepath.Join(dir, "data")
	l, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	url := "http://" + l.Addr().String()
	srvCtx, stopServer := context.WithCancel(ctx)
	srvDone := make(chan error, 1)
	go func() {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		srvDone <- api.Run(srvCtx, api.Config{DataDir: data, Listener: l, TempDir: data, Logger: log, ShutdownTimeout: 10 * time.Second})
	}()
	defer func() { stopServer(); <-srvDone }()
	var opKey []byte
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if opKey, err = os.ReadFile(filepath.Join(data, api.OperatorKeyFile)); err == nil && len(opKey) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: the server did not start")
		}
	}
	say("cleanroom demo: a brand and a publisher measure a campaign without sharing customer lists")
	say("  server:   %s (embedded DuckDB in %s)", url, data)
	op := client.New(url, string(trimNL(opKey)))

	type party struct {
		name, csv, key string
		admin, eng     *client.Client
		id             string
		// keys holds the secret of each role's key, for the console.
		keys map[wire.Role]string
	}
	brand := &party{name: "Brand Co", csv: filepath.Join(dir, "brand.csv"), key: filepath.Join(dir, "brand.key")}
	pub := &party{name: "Publisher", csv: filepath.Join(dir, "publisher.csv"), key: filepath.Join(dir, "publisher.key")}
	for _, p := range []*party{brand, pub} {
		cp, err := op.CreatePartner(ctx, p.name)
		if err != nil {
			return err
		}
		p.id, p.admin = cp.Partner.ID, client.New(url, cp.Secret)
		k, err := p.admin.CreateKey(ctx, p.id, "engineer", "demo")
		if err != nil {
			return err
		}
		p.eng = client.New(url, k.Secret)
		p.keys = map[wire.Role]string{wire.Admin: cp.Secret, wire.Engineer: k.Secret}
	}
	ruleMap := map[string]any{
		"purpose": "measurement", "dimensions": []string{"brand_co_region", "publisher_exposed"},
		"metrics": map[string][2]float64{"brand_co_spend": {0, 250}, "brand_co_purchases": {0, 3}}}
	rules, _ := json.Marshal(ruleMap)
	co, err := brand.admin.Propose(ctx, "spring campaign", pub.id, rules)
	if err != nil {
		return err
	}
	if co, err = pub.admin.Approve(ctx, co.ID, co.RulesVersion); err != nil {
		return err
	}
	say("  collaboration %s: proposed by %s, approved by %s; purpose %q", co.ID, brand.name, pub.name, co.Rules.Purpose)

	// People [0, brandN) are the brand's customers; the publisher reached
	// [brandN-overlap, brandN-overlap+pubN).
	first := brandN - overlap
	if err := writeCSV(brand.csv, "email,region,purchases,spend,consent", 0, brandN, func(b []byte, k int) []byte {
		b = append(b, ",r"...)
		b = strconv.AppendInt(b, int64(k%5), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(k%4), 10)
		b = append(b, ',')
		b = strconv.AppendFloat(b, float64(k%97)*2.5, 'f', 2, 64)
		return append(append(b, ','), consentBrand(k)...)
	}); err != nil {
		return err
	}
	if err := writeCSV(pub.csv, "email,exposed,impressions,consent", first, first+pubN, func(b []byte, k int) []byte {
		b = append(b, ',')
		b = strconv.AppendBool(b, k%3 != 0)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(k%7), 10)
		return append(append(b, ','), consentPub(k)...)
	}); err != nil {
		return err
	}
	want := 0
	for k := first; k < brandN; k++ {
		if consentBrand(k) != "marketing" && consentPub(k) != "" {
			want++
		}
	}
	say("  %s: %d customers (%s); %s: %d people reached (%s)", brand.name, brandN, brand.csv, pub.name, pubN, pub.csv)
	say("  %d people are in both lists, %d of them consented to measurement on both sides\n", overlap, want)

	for _, p := range []*party{brand, pub} {
		k, err := psi.GenerateKey(nil)
		if err != nil {
			return err
		}
		if err := psi.SaveKey(p.key, k, "demo key, collaboration "+co.ID); err != nil {
			return err
		}
		f := uploadFlags{collab: co.ID, keyFile: p.key, idColumn: "email", consentColumn: "consent", quiet: quiet, cacheMiB: defaultBlindCacheMiB}
		a, err := runUpload(ctx, p.eng, p.csv, f, progress)
		if err != nil {
			return err
		}
		say("  %s uploaded %d rows, blinded on its own machine (content sha256 %.16s...)", p.name, a.Rows, a.ContentSHA256)
	}

	var wg sync.WaitGroup
	var sizes [2]int64
	var errs [2]error
	t0 := time.Now()
	for i, p := range []*party{brand, pub} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key, err := psi.LoadKey(p.key)
			if err != nil {
				errs[i] = err
				return
			}
			m, err := p.eng.DoMatch(ctx, co.ID, key, client.MatchOptions{Poll: 100 * time.Millisecond})
			if err == nil && m.NoisySize != nil {
				sizes[i] = *m.NoisySize
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	say("\nmatched in %.1f s: each party re-blinded the other's points with its own key", time.Since(t0).Seconds())
	say("  cohort size released to both parties: %d (Laplace noise, epsilon %g)", sizes[0], co.Rules.MatchEpsilon)
	say("  true consented overlap:                %d", want)

	// An analyst at the brand asks three questions.
	ak, err := brand.admin.CreateKey(ctx, brand.id, "analyst", "demo")
	if err != nil {
		return err
	}
	analyst := client.New(url, ak.Secret)
	brand.keys[wire.Analyst] = ak.Secret
	for _, q := range []struct{ title, sql string }{
		{"Purchase rate by region, exposed vs not exposed", `SELECT brand_co_region, publisher_exposed, COUNT(*) AS people, AVG(brand_co_purchases) AS purchases_per_person
FROM cohort GROUP BY brand_co_region, publisher_exposed`},
		{"Spend of exposed vs not exposed customers", `SELECT publisher_exposed, SUM(brand_co_spend) AS spend, AVG(brand_co_spend) AS spend_per_person
FROM cohort GROUP BY publisher_exposed`},
		{"Exposed customers in regions r1 and r2", `SELECT COUNT(*) AS people FROM cohort WHERE brand_co_region IN ('r1', 'r2') AND publisher_exposed = true`},
	} {
		var a wire.Answer
		if err := analyst.Query(ctx, co.ID, q.sql, 1, "json", &a); err != nil {
			return err
		}
		say("\n%s:\n  %s", q.title, strings.ReplaceAll(q.sql, "\n", "\n  "))
		printAnswer(out, a)
	}
	if o.serve {
		// A refusal, so the workbench's history and the report show one.
		sql := "SELECT uid, COUNT(*) FROM cohort GROUP BY uid"
		err := analyst.Query(ctx, co.ID, sql, 1, "json", &wire.Answer{})
		var refusal *client.Error
		if !errors.As(err, &refusal) {
			return fmt.Errorf("demo: a query naming the hidden uid column was not refused: %v", err)
		}
		say("\nA question the rules refuse, at no cost:\n  %s\n  refused (%s): %s", sql, refusal.Code, refusal.Message)
	}
	say("")
	if err := printBudget(ctx, analyst, co.ID, out); err != nil {
		return err
	}

	// The publisher's auditor checks the log offline and reads the report.
	audKey, err := pub.admin.CreateKey(ctx, pub.id, "auditor", "demo")
	if err != nil {
		return err
	}
	auditor := client.New(url, audKey.Secret)
	pub.keys[wire.Auditor] = audKey.Secret
	if o.serve {
		if err := demoDeletions(ctx, say, brand.eng, co.ID, brand.key, brand.name, brandN); err != nil {
			return err
		}
		rules2, _ := json.Marshal(ruleMap)
		summer, err := brand.admin.Propose(ctx, "summer campaign", pub.id, rules2)
		if err != nil {
			return err
		}
		if summer, err = pub.admin.Approve(ctx, summer.ID, summer.RulesVersion); err != nil {
			return err
		}
		was := summer.Rules.EpsilonBudget
		ruleMap["epsilon_budget"] = was / 2
		rules2, _ = json.Marshal(ruleMap)
		if summer, err = brand.admin.ChangeRules(ctx, summer.ID, rules2); err != nil {
			return err
		}
		say("collaboration %s (summer campaign): approved by both, then %s proposed an epsilon budget of %g instead of %g; the change awaits %s's approval",
			summer.ID, brand.name, summer.Rules.EpsilonBudget, was, pub.name)
		// The roles the demo has not needed, for the console.
		for _, k := range []struct {
			p    *party
			role wire.Role
		}{{pub, wire.Analyst}, {brand, wire.Auditor}} {
			ck, err := k.p.admin.CreateKey(ctx, k.p.id, string(k.role), "demo")
			if err != nil {
				return err
			}
			k.p.keys[k.role] = ck.Secret
		}
	}
	pkText, err := auditor.AuditPublicKey(ctx)
	if err != nil {
		return err
	}
	pk, err := audit.ParsePublicKey(pkText)
	if err != nil {
		return err
	}
	var export bytes.Buffer
	if err := auditor.AuditExport(ctx, &export); err != nil {
		return err
	}
	exportPath := filepath.Join(dir, "audit-export.ndjson")
	if err := os.WriteFile(exportPath, export.Bytes(), 0o600); err != nil {
		return err
	}
	entries, head, err := audit.ReadExport(bytes.NewReader(export.Bytes()))
	if err != nil {
		return err
	}
	if err := audit.Verify(entries, head, pk); err != nil {
		return fmt.Errorf("demo: the audit log does not verify: %w", err)
	}
	say("\n%s's auditor verified the signed audit log offline: %d entries, head %d signed by %s (%s)",
		pub.name, len(entries), head.Seq, pkText, exportPath)
	rep, err := auditor.Report(ctx, co.ID)
	if err != nil {
		return err
	}
	say("")
	if err := printReport(out, rep); err != nil {
		return err
	}
	say("\nthe data lives in %s (delete the directory when done)", dir)
	if !o.serve {
		return nil
	}
	say("\nconsole: %s/console/ (Ctrl-C stops the server)", url)
	say("sign in with one of these keys:")
	for _, p := range []*party{brand, pub} {
		for _, r := range demoRoles {
			say("%s (%s): %s", r, p.name, p.keys[r])
		}
	}
	select {
	case <-ctx.Done():
		say("\nstopping the server")
		return nil
	case err := <-srvDone:
		srvDone <- err // for the deferred wait
		return fmt.Errorf("demo: the server stopped: %w", err)
	}
}

// demoDeletions has the brand's engineer honour two deletion requests
// and three opt-outs (of its own customers), each with a signed receipt.
func demoDeletions(ctx context.Context, say func(string, ...any), eng *client.Client, collab, keyFile, name string, n int) error {
	key, err := psi.LoadKey(keyFile)
	if err != nil {
		return err
	}
	var ids []string
	for k := range 5 {
		ids = append(ids, "customer"+strconv.Itoa(k%n)+"@example.com")
	}
	var receipts []string
	for _, req := range []struct {
		ids    []string
		optOut bool
	}{{ids[:2], false}, {ids[2:], true}} {
		pids, err := eng.BlindIDs(ctx, collab, key, "", "", req.ids)
		if err != nil {
			return err
		}
		r, err := eng.DeleteIDs(ctx, collab, key, pids, req.optOut)
		if err != nil {
			return err
		}
		receipts = append(receipts, r.ID)
	}
	say("\n%s's engineer deleted 2 customers on request and opted out 3, with signed receipts %s", name, strings.Join(receipts, " and "))
	return nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// writeCSV writes people [from, to) as customer<k>@example.com plus the
// columns row appends.
func writeCSV(path, header string, from, to int, row func(b []byte, k int) []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	w.WriteString(header + "\n")
	var b []byte
	for k := from; k < to; k++ {
		b = append(b[:0], "customer"...)
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, "@example.com"...)
		b = row(b, k)
		b = append(b, '\n')
		w.Write(b)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
