package analytics

import (
	"math"
	"testing"
	"time"
)

func TestRollupOf(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	events := []Event{
		{Type: PageView, At: at("2025-11-03T00:00:00Z"), Path: "/", ReferrerHost: "a.example", UTM: UTM{Source: "x"}},
		{Type: PageView, At: at("2025-11-03T00:14:59Z"), Path: "/"},
		{Type: PageView, At: at("2025-11-03T23:45:00Z"), Path: "/b"},
		{Type: Conversion, At: at("2025-11-02T23:59:59Z")},
		{Type: PageView, At: at("1969-12-31T23:59:59Z")}, // before the epoch: day -1, last quarter
		{Type: PageView, At: at("2025-11-03T10:00:00Z"), Path: "/", Bot: true},
	}
	r := RollupOf(events)
	if len(r.Totals) != 2 || r.Totals[0] != (TypeCount{Conversion, 1}) || r.Totals[1] != (TypeCount{PageView, 4}) {
		t.Errorf("Totals = %+v", r.Totals)
	}
	day := at("2025-11-03T00:00:00Z").Unix() / 86400
	if len(r.Quarters) != 3 {
		t.Fatalf("Quarters = %+v", r.Quarters)
	}
	if q := r.Quarters[0]; q.Day != -1 || q.Type != PageView || q.Counts[QuartersPerDay-1] != 1 {
		t.Errorf("before the epoch: %+v", q)
	}
	if q := r.Quarters[1]; q.Day != day-1 || q.Type != Conversion || q.Counts[QuartersPerDay-1] != 1 {
		t.Errorf("conversion: day %d type %s", q.Day, q.Type)
	}
	if q := r.Quarters[2]; q.Day != day || q.Counts[0] != 2 || q.Counts[QuartersPerDay-1] != 1 || q.Counts[40] != 0 {
		t.Errorf("page views: %+v (the robot's must not count)", q)
	}
	want := []TopCount{{TopPath, day, "/", 2}, {TopPath, day, "/b", 1}, {TopReferrer, day, "a.example", 1}, {TopUTMSource, day, "x", 1}}
	if len(r.Tops) != len(want) {
		t.Fatalf("Tops = %+v, want %+v", r.Tops, want)
	}
	for i := range want {
		if r.Tops[i] != want[i] {
			t.Errorf("Tops[%d] = %+v, want %+v", i, r.Tops[i], want[i])
		}
	}
}

func TestAddQuarters(t *testing.T) {
	var delta [QuartersPerDay]int64
	delta[0], delta[95] = 3, math.MaxUint32-4
	b, err := AddQuarters(nil, &delta)
	if err != nil || len(b) != quartersBytes {
		t.Fatalf("AddQuarters(nil) = %d bytes, %v", len(b), err)
	}
	var one [QuartersPerDay]int64
	one[40] = 1
	if b, err = AddQuarters(b, &one); err != nil {
		t.Fatal(err)
	}
	c, err := DecodeQuarters(b)
	if err != nil || c[0] != 3 || c[40] != 1 || c[95] != math.MaxUint32-4 || c[1] != 0 {
		t.Errorf("decoded %v…, %v", c[:2], err)
	}
	// Stored as running totals: the events before quarter 41 are entry 40.
	if n, err := DecodeRunningTotal(b[4*40 : 4*41]); err != nil || n != 4 {
		t.Errorf("running total at quarter 40 = %d, %v; want 4", n, err)
	}
	if n, err := DecodeRunningTotal(b[4*95:]); err != nil || n != math.MaxUint32 {
		t.Errorf("day total = %d, %v", n, err)
	}
	if _, err := AddQuarters(b, &one); err == nil {
		t.Error("AddQuarters wrapped a total past the uint32 range")
	}
	if _, err := AddQuarters([]byte{1, 2, 3}, &one); err == nil {
		t.Error("AddQuarters accepted a stored row of the wrong size")
	}
	if _, err := DecodeRunningTotal([]byte{1}); err == nil {
		t.Error("DecodeRunningTotal accepted 1 byte")
	}
}
