package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// runJobsWorkflows checks saving, reading, listing and deleting owners' workflows.
func runJobsWorkflows(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("Workflows", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		const ann, bob = "usr_ann", "usr_bob"
		created := jobAt
		put := func(w jobs.Workflow) jobs.Workflow {
			t.Helper()
			got, err := s.PutWorkflow(ctx, w)
			if err != nil {
				t.Fatalf("PutWorkflow(%s, %s): %v", w.OwnerID, w.Name, err)
			}
			return got
		}
		check := func(what string, got, want jobs.Workflow) {
			t.Helper()
			if got.OwnerID != want.OwnerID || got.Name != want.Name || got.Description != want.Description {
				t.Errorf("%s: %s/%s %q, want %s/%s %q", what, got.OwnerID, got.Name, got.Description, want.OwnerID, want.Name, want.Description)
			}
			checkArray(t, what, "Steps", got.Steps, want.Steps)
			checkTime(t, what, "CreatedAt", &got.CreatedAt, &want.CreatedAt)
			checkTime(t, what, "UpdatedAt", &got.UpdatedAt, &want.UpdatedAt)
		}
		steps := []jobs.Step{
			{ID: "fetch", Connector: "http", Action: "get", Input: json.RawMessage(`{"url": "{{payload.url}}"}`)},
			{ID: "log", Connector: "log", Action: "write"},
		}
		sync1 := jobs.Workflow{OwnerID: ann, Name: "sync", Description: "Nightly sync — v1", Steps: steps, CreatedAt: created, UpdatedAt: created}
		check("PutWorkflow", put(sync1), sync1)
		got, err := s.GetWorkflow(ctx, ann, "sync")
		if err != nil {
			t.Fatalf("GetWorkflow: %v", err)
		}
		check("GetWorkflow", got, sync1)

		// Replacing keeps the creation time.
		replaced := created.Add(time.Hour + time.Microsecond)
		sync2 := jobs.Workflow{OwnerID: ann, Name: "sync", Description: "v2", Steps: steps[:1], CreatedAt: replaced, UpdatedAt: replaced}
		want2 := sync2
		want2.CreatedAt = created
		check("PutWorkflow replacing", put(sync2), want2)
		got, err = s.GetWorkflow(ctx, ann, "sync")
		if err != nil {
			t.Fatalf("GetWorkflow after replacing: %v", err)
		}
		check("GetWorkflow after replacing", got, want2)

		zeta := jobs.Workflow{OwnerID: ann, Name: "zeta", Steps: steps, CreatedAt: created, UpdatedAt: created}
		alpha := jobs.Workflow{OwnerID: ann, Name: "alpha", Steps: steps[1:], CreatedAt: created, UpdatedAt: created}
		bobs := jobs.Workflow{OwnerID: bob, Name: "sync", Description: "Bob's", Steps: steps[1:], CreatedAt: created, UpdatedAt: created}
		for _, w := range []jobs.Workflow{zeta, alpha, bobs} {
			put(w)
		}
		for _, tc := range []struct {
			owner string
			want  []jobs.Workflow
		}{
			{ann, []jobs.Workflow{alpha, want2, zeta}},
			{bob, []jobs.Workflow{bobs}},
			{"usr_nobody", nil},
		} {
			list, err := s.ListWorkflows(ctx, tc.owner)
			if err != nil {
				t.Fatalf("ListWorkflows(%s): %v", tc.owner, err)
			}
			if len(list) != len(tc.want) {
				t.Errorf("ListWorkflows(%s) has %d workflows, want %d", tc.owner, len(list), len(tc.want))
				continue
			}
			for i := range list {
				check("ListWorkflows("+tc.owner+")", list[i], tc.want[i])
			}
		}

		if err := s.DeleteWorkflow(ctx, ann, "sync"); err != nil {
			t.Fatalf("DeleteWorkflow: %v", err)
		}
		_, err = s.GetWorkflow(ctx, ann, "sync")
		checkNotFound(t, "GetWorkflow after DeleteWorkflow", err)
		checkNotFound(t, "DeleteWorkflow again", s.DeleteWorkflow(ctx, ann, "sync"))
		checkNotFound(t, "DeleteWorkflow of an unknown owner", s.DeleteWorkflow(ctx, "usr_nobody", "zeta"))
		_, err = s.GetWorkflow(ctx, "usr_nobody", "zeta")
		checkNotFound(t, "GetWorkflow of another owner's name", err)
		got, err = s.GetWorkflow(ctx, bob, "sync")
		if err != nil {
			t.Fatalf("GetWorkflow of another owner's workflow of the deleted name: %v", err)
		}
		check("another owner's workflow after DeleteWorkflow", got, bobs)
	})

}
