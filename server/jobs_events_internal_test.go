package server

import (
	"testing"

	"github.com/levqor/levqor/jobs"
)

// TestEventIDs: an event id names the marks it was sent with and reads back to
// them; ids that do not fit the job are ignored (the stream replays), and "end"
// counts only once the job has ended.
func TestEventIDs(t *testing.T) {
	j := jobs.Job{Status: jobs.StatusRetrying, Attempts: 2, Steps: []jobs.StepState{
		{Status: jobs.StepSucceeded, Attempts: 1}, {Status: jobs.StepFailed, Attempts: 12}, {Status: jobs.StepPending}}}
	m := &jobMarks{status: j.Status, attempts: j.Attempts}
	for _, st := range j.Steps {
		m.steps = append(m.steps, stepMark{st.Status, st.Attempts})
	}
	id := m.id()
	if id != "y2.d1.f12.p0" {
		t.Errorf("id %q, want y2.d1.f12.p0", id)
	}
	got, ended := resumeFrom(&id, j)
	if ended || got == nil || got.id() != id {
		t.Errorf("resumeFrom(%q) = %+v, %v; want the same marks", id, got, ended)
	}
	for _, bad := range []string{"", "y2", "y2.d1.f12", "y2.d1.f12.p0.p0", "z2.d1.f12.p0", "y-1.d1.f12.p0", "y+1.d1.f12.p0",
		"y2.d1.f12.q0", "y.d1.f12.p0", "y99999999.d1.f12.p0", "end"} {
		if got, ended := resumeFrom(&bad, j); got != nil || ended {
			t.Errorf("resumeFrom(%q) = %+v, %v; want it ignored", bad, got, ended)
		}
	}
	end := endEventID
	j.Status = jobs.StatusFailed
	if _, ended := resumeFrom(&end, j); !ended {
		t.Errorf("end of an ended job: not ended")
	}
	if got, ended := resumeFrom(nil, j); got != nil || ended {
		t.Errorf("no Last-Event-ID: %+v, %v", got, ended)
	}
}
