package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/api"
	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// examplesDir holds the example rules, one directory each.
const examplesDir = "../../examples"

// TestExamples proposes each example's rules as they are to a server with
// the demo's partners (Brand Co and Publisher, whose prefixes the
// examples' templates and public groups use): the proposal is accepted
// and approved, both parties upload data of the declared shape (the
// demo's people, customer<k>@example.com), match, and every template the
// example declares, and the built-in questions its README shows, answer
// with rows. An example whose names drift from its tables fails here.
func TestExamples(t *testing.T) {
	dirs, err := os.ReadDir(examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range dirs {
		if d.IsDir() {
			names = append(names, d.Name())
		}
	}
	if !slices.Contains(names, "measurement") || !slices.Contains(names, "reach-frequency") {
		t.Fatalf("examples %v, want measurement and reach-frequency among them", names)
	}
	s := startExampleServer(t)
	// Questions beyond the examples' own templates: those their READMEs show.
	builtins := map[string][]wire.Request{
		"reach-frequency": {{Template: "reach_frequency", Params: map[string]string{"by": "publisher_campaign", "events": "publisher_exposure_date"}}},
		"measurement": {{Template: "sales_after_exposure", Params: map[string]string{"by": "publisher_campaign", "amount": "brand_co_amount",
			"exposure_date": "publisher_exposure_date", "purchase_date": "brand_co_purchase_date"}}},
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(examplesDir, name, "rules.json"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(examplesDir, name, "README.md")); err != nil {
				t.Errorf("example %s has no README saying what it allows: %v", name, err)
			}
			// The file as a user would propose it: read as the CLI reads it.
			raw, err := readRules(filepath.Join(examplesDir, name, "rules.json"))
			if err != nil {
				t.Fatal(err)
			}
			co, err := s.brand.admin.Propose(s.ctx, "example "+name, s.pub.id, raw)
			if err != nil {
				t.Fatalf("proposing %s: %v", name, err)
			}
			if co, err = s.pub.admin.Approve(s.ctx, co.ID, co.RulesVersion); err != nil || co.State != wire.StateActive {
				t.Fatalf("approving %s: %v", name, err)
			}
			rules, err := wire.ParseRules(b)
			if err != nil {
				t.Fatal(err)
			}
			s.uploadAndMatch(t, co, rules)
			var asks []wire.Request
			for _, tp := range rules.Templates {
				params := map[string]string{}
				for _, p := range tp.Params {
					if p.Default == "" && p.Type == "string" {
						params[p.Name] = p.Values[0]
					}
				}
				asks = append(asks, wire.Request{Template: tp.Name, Params: params})
			}
			if len(asks) == 0 {
				t.Errorf("example %s declares no template: say its questions in one", name)
			}
			for _, req := range append(asks, builtins[name]...) {
				req.Epsilon = rules.MaxQueryEpsilon
				var a wire.Answer
				if err := s.analyst.Ask(s.ctx, co.ID, req, "json", &a); err != nil {
					t.Errorf("%s: template %s: %v", name, req.Template, err)
					continue
				}
				if len(a.Rows) == 0 {
					t.Errorf("%s: template %s answered no rows", name, req.Template)
				}
			}
		})
	}
}

// exampleParty is a partner of the examples' server.
type exampleParty struct {
	name, id   string
	admin, eng *client.Client
}

type exampleServer struct {
	ctx        context.Context
	dir        string
	brand, pub exampleParty
	analyst    *client.Client
}

func startExampleServer(t *testing.T) *exampleServer {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- api.Run(ctx, api.Config{DataDir: data, Listener: l, TempDir: data, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ShutdownTimeout: 10 * time.Second})
	}()
	t.Cleanup(func() { cancel(); <-done })
	var opKey []byte
	for deadline := time.Now().Add(60 * time.Second); len(opKey) == 0; time.Sleep(50 * time.Millisecond) {
		opKey, _ = os.ReadFile(filepath.Join(data, api.OperatorKeyFile))
		if time.Now().After(deadline) {
			t.Fatal("the server did not start")
		}
	}
	url := "http://" + l.Addr().String()
	op := client.New(url, string(trimNL(opKey)))
	s := &exampleServer{ctx: ctx, dir: dir, brand: exampleParty{name: "Brand Co"}, pub: exampleParty{name: "Publisher"}}
	for _, p := range []*exampleParty{&s.brand, &s.pub} {
		cp, err := op.CreatePartner(ctx, p.name)
		if err != nil {
			t.Fatal(err)
		}
		p.id, p.admin = cp.Partner.ID, client.New(url, cp.Secret)
		k, err := p.admin.CreateKey(ctx, p.id, "engineer", "example")
		if err != nil {
			t.Fatal(err)
		}
		p.eng = client.New(url, k.Secret)
	}
	k, err := s.brand.admin.CreateKey(ctx, s.brand.id, "analyst", "example")
	if err != nil {
		t.Fatal(err)
	}
	s.analyst = client.New(url, k.Secret)
	return s
}

// Sizes of the examples' data: each party's people clear the examples'
// min_upload_users (1,000) and the cohort their min_cohort_users.
const (
	exampleBrand   = 1500 // customers 0..1499
	examplePub     = 1500 // people the publisher reached, from 300
	exampleOverlap = 1200
)

// uploadAndMatch writes each declared table of co's rules as a CSV of the
// demo's people, uploads it as the party's engineer would (every row
// consented for the purpose), and runs the match from both sides.
func (s *exampleServer) uploadAndMatch(t *testing.T, co wire.Collaboration, r wire.Rules) {
	t.Helper()
	dir := t.TempDir()
	for i, p := range []*exampleParty{&s.brand, &s.pub} {
		party := []string{wire.PartyProposer, wire.PartyPartner}[i]
		keyFile := filepath.Join(dir, party+".key")
		k, err := psi.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := psi.SaveKey(keyFile, k, "example"); err != nil {
			t.Fatal(err)
		}
		from, to := 0, exampleBrand
		if i == 1 {
			from, to = exampleBrand-exampleOverlap, exampleBrand-exampleOverlap+examplePub
		}
		tables := r.TablesOf(party)
		if len(tables) == 0 {
			t.Fatalf("the %s declares no table", party)
		}
		for ti, tb := range tables {
			csv := filepath.Join(dir, party+"-"+tb.Name+".csv")
			writeExampleTable(t, csv, tb, r, i, ti, from, to)
			f := uploadFlags{collab: co.ID, keyFile: keyFile, idColumn: "email", consentAll: r.Purpose, table: tb.Name, quiet: true, cacheMiB: defaultBlindCacheMiB}
			if _, err := runUpload(s.ctx, p.eng, csv, f, io.Discard); err != nil {
				t.Fatalf("%s uploading %s: %v", p.name, tb.Name, err)
			}
		}
	}
	errc := make(chan error, 2)
	for i, p := range []*exampleParty{&s.brand, &s.pub} {
		go func() {
			k, err := psi.LoadKey(filepath.Join(dir, []string{wire.PartyProposer, wire.PartyPartner}[i]+".key"))
			if err == nil {
				_, err = p.eng.DoMatch(s.ctx, co.ID, k, client.MatchOptions{Poll: 100 * time.Millisecond})
			}
			errc <- err
		}()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatalf("match: %v", err)
		}
	}
}

// writeExampleTable writes people [from, to) of a table declared as tb:
// a person has 1 to 3 rows (tables after a party's first), each column a
// value of its role. Public groups' values are used where declared, so
// that a question over them finds people; the brand's dates fall 3 to 9
// days after the publisher's, so that conversions after exposure exist.
func writeExampleTable(t *testing.T, path string, tb wire.TableRule, r wire.Rules, side, index, from, to int) {
	t.Helper()
	prefix := []string{"brand_co_", "publisher_"}[side]
	header := []string{"email"}
	for _, c := range tb.Columns {
		header = append(header, c.Name)
	}
	var b strings.Builder
	b.WriteString(strings.Join(header, ",") + "\n")
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for k := from; k < to; k++ {
		rows := 1
		if index > 0 || side == 1 {
			rows = 1 + k%3
		}
		for j := range rows {
			cells := []string{"customer" + strconv.Itoa(k) + "@example.com"}
			for ci, c := range tb.Columns {
				switch c.Role {
				case wire.RoleTime:
					day := (k + j) % 4
					if side == 0 {
						day += 5 + j
					}
					cells = append(cells, base.AddDate(0, 0, day).Format(time.DateOnly))
				case wire.RoleMetric:
					lo, hi := (*c.Bounds)[0], (*c.Bounds)[1]
					cells = append(cells, strconv.FormatFloat(lo+float64((k+j)%10)*(hi-lo)/20, 'f', 2, 64))
				default:
					if pv, ok := r.PublicGroups[prefix+c.Name]; ok {
						list := pv.List()
						cells = append(cells, fmt.Sprint(list[(k+j+ci)%len(list)]))
					} else {
						cells = append(cells, c.Name+strconv.Itoa((k+j+ci)%2))
					}
				}
			}
			b.WriteString(strings.Join(cells, ",") + "\n")
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}
