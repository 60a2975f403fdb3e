package cohort

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/psi"
)

// sortPoints agrees with a plain byte sort and de-duplication, on the
// one-goroutine path and the two-halves one, with repeats inside each half,
// across the halves, and points that differ only after their eighth byte.
func TestSortPoints(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 5, 1000, 1<<16 + 3, 200001} {
		pts := make([]psi.Point, n)
		for i := range pts {
			switch {
			case i > 0 && i%7 == 0:
				pts[i] = pts[rng.IntN(i)] // a repeat, anywhere before
			case i > 0 && i%11 == 0:
				pts[i] = pts[i-1]
				pts[i][31] ^= 1 // the same first 31 bytes
			default:
				for j := range pts[i] {
					pts[i][j] = byte(rng.Uint32())
				}
				pts[i][0] &= 3 // many equal leading bytes
			}
		}
		want := slices.Clone(pts)
		slices.SortFunc(want, func(a, b psi.Point) int { return bytes.Compare(a[:], b[:]) })
		want = slices.Compact(want)
		got := sortPoints(pts)
		if !slices.Equal(got, want) {
			t.Errorf("n=%d: got %d points, want %d, or in another order", n, len(got), len(want))
		}
	}
}

// The points a match serves are the audience's distinct consented people,
// in the order of their bytes: repeats, people without consent and the
// upload's row order do not show. Both tables are read in ranges of
// seven rows here, so ranges' edges fall everywhere.
func TestPointsServedDistinctConsentedSorted(t *testing.T) {
	defer func(n int64) { readRange = n }(readRange)
	readRange = 7
	f := newFixture(t)
	var csv strings.Builder
	csv.WriteString("email,label,value,consent\n")
	for k := 0; k < 30; k++ {
		fmt.Fprintf(&csv, "person%d@example.com,l0,1,measurement\n", k)
	}
	for k := 0; k < 10; k++ { // ten repeats, with other attributes
		fmt.Fprintf(&csv, "person%d@example.com,l1,2,measurement\n", k)
	}
	for k := 100; k < 105; k++ { // five people who did not consent
		fmt.Fprintf(&csv, "person%d@example.com,l0,1,marketing\n", k)
	}
	var body bytes.Buffer
	if _, err := audience.EncodeCSV(f.ctx, strings.NewReader(csv.String()), &body, f.key[0],
		audience.EncodeOptions{IDColumn: "email", IDType: psi.Email, ConsentColumn: "consent"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Upload(f.ctx, f.eng[0], f.c, &body, UploadOptions{Replace: true}); err != nil {
		t.Fatal(err)
	}
	f.upload(1, 0, 25)
	m, _, err := f.start(1)
	if err != nil {
		t.Fatal(err)
	}
	if m.PointsA != 30 || m.PointsB != 25 {
		t.Fatalf("points a %d, b %d; want 30 and 25", m.PointsA, m.PointsB)
	}
	var out bytes.Buffer
	if err := f.s.Points(f.ctx, f.c, m, f.eng[1].PartnerID, &out); err != nil {
		t.Fatal(err)
	}
	r, err := ipc.NewReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	var got [][]byte
	for r.Next() {
		col := r.Record().Column(0).(*array.FixedSizeBinary)
		for i := range col.Len() {
			got = append(got, bytes.Clone(col.Value(i)))
		}
	}
	if len(got) != 30 {
		t.Fatalf("served %d points, want 30", len(got))
	}
	for i := 1; i < len(got); i++ {
		if bytes.Compare(got[i-1], got[i]) >= 0 {
			t.Fatalf("point %d is not after point %d in byte order", i, i-1)
		}
	}
}
