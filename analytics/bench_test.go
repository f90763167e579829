package analytics_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/analytics"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

// benchEngines are the stores the benchmarks run on; PostgreSQL's is skipped
// without LEVQOR_TEST_POSTGRES_URL.
var benchEngines = []struct {
	name string
	open func(testing.TB) store.Store
}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}}

// seedYear stores one event of every type in every quarter hour of the 367 days
// up to now, with a dozen paths, referrers and sources: rollups as large as those
// of any number of events over the longest summary range (the top lists as large as
// a dozen values each make them).
func seedYear(b *testing.B, st store.Store, now time.Time) int {
	b.Helper()
	types := []string{analytics.PageView, analytics.CTAClick, analytics.Newsletter, analytics.Conversion}
	first := now.Add(-367 * 24 * time.Hour).Truncate(15 * time.Minute)
	var batch []analytics.Event
	n := 0
	for at, i := first, 0; !at.After(now); at, i = at.Add(15*time.Minute), i+1 {
		for _, typ := range types {
			batch = append(batch, analytics.Event{
				ID: levqor.NewID("evt"), Type: typ, At: at, Path: fmt.Sprintf("/page%d", i%12),
				ReferrerHost: fmt.Sprintf("ref%d.example", i%12), UTM: analytics.UTM{Source: fmt.Sprintf("src%d", i%12)},
			})
		}
		if len(batch) >= 10_000 {
			n += len(batch)
			if err := st.InsertEvents(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	n += len(batch)
	if err := st.InsertEvents(b.Context(), batch); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkSummary measures Service.Summary over a year of full rollups: the
// default (7 days, UTC) and the longest range in a zone with daylight saving time.
func BenchmarkSummary(b *testing.B) {
	for _, eng := range benchEngines {
		b.Run(eng.name, func(b *testing.B) {
			st := eng.open(b)
			now := time.Now()
			seeded := seedYear(b, st, now)
			svc, err := analytics.NewService(st, []byte("bench-secret-0123456789"))
			if err != nil {
				b.Fatal(err)
			}
			ny, _ := time.LoadLocation("America/New_York")
			to := now.In(ny)
			for _, q := range []struct {
				name string
				q    analytics.SummaryQuery
			}{
				{"7days", analytics.SummaryQuery{}},
				{"366days", analytics.SummaryQuery{From: to.AddDate(0, 0, -analytics.MaxRangeDays).Format(time.DateOnly), To: to.Format(time.DateOnly), TZ: "America/New_York"}},
			} {
				b.Run(q.name, func(b *testing.B) {
					for b.Loop() {
						sum, err := svc.Summary(b.Context(), q.q)
						if err != nil {
							b.Fatal(err)
						}
						if sum.Totals.Sum() != int64(seeded) {
							b.Fatalf("summary counts %d events, %d seeded", sum.Totals.Sum(), seeded)
						}
					}
				})
			}
		})
	}
}

// BenchmarkTrack measures Service.Track from many goroutines: validation, hashing
// and the batched insert of the event and its rollups.
func BenchmarkTrack(b *testing.B) {
	for _, eng := range benchEngines {
		b.Run(eng.name, func(b *testing.B) {
			svc, err := analytics.NewService(eng.open(b), []byte("bench-secret-0123456789"))
			if err != nil {
				b.Fatal(err)
			}
			in := analytics.TrackInput{Type: analytics.PageView, Path: "/pricing", Ref: "https://levqor.ai/pricing?utm_source=bench",
				Referrer: "https://www.example.com/", Email: "reader@example.com", Payload: []byte(`{"plan":"pro"}`), UserAgent: browser}
			b.SetParallelism(16) // concurrent requests, as a server sees them
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := svc.Track(b.Context(), in); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
