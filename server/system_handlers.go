package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"gopkg.in/yaml.v3"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/jobs"
)

// specDocuments renders the spec as JSON and as YAML, each on its first request:
// marshalling the spec takes milliseconds and a few hundred KiB that start-up and
// an idle server do without. It renders the spec as it is now (the servers
// included), whatever New changes in spec afterwards.
func specDocuments(spec *openapi3.T) (jsonDoc, yamlDoc func() (*document, error)) {
	snapshot := *spec // New drops Servers from spec; the documents keep them
	const cache = "public, max-age=300"
	jsonDoc = sync.OnceValues(func() (*document, error) {
		j, err := json.Marshal(&snapshot)
		if err != nil {
			return nil, fmt.Errorf("render spec as JSON: %w", err)
		}
		return newDocument("application/json", cache, j), nil
	})
	yamlDoc = sync.OnceValues(func() (*document, error) {
		j, err := jsonDoc()
		if err != nil {
			return nil, err
		}
		var tree any
		if err := yaml.Unmarshal(j.body, &tree); err != nil {
			return nil, fmt.Errorf("render spec as YAML: %w", err)
		}
		y, err := yaml.Marshal(tree)
		if err != nil {
			return nil, fmt.Errorf("render spec as YAML: %w", err)
		}
		return newDocument("application/yaml", cache, y), nil
	})
	return jsonDoc, yamlDoc
}

// GetRoot implements api.StrictServerInterface.
func (s *handlers) GetRoot(ctx context.Context, _ api.GetRootRequestObject) (api.GetRootResponseObject, error) {
	return api.GetRoot200JSONResponse{
		Service: "levqor",
		Version: levqor.Version,
		Links: map[string]string{
			"docs":    "/docs",
			"openapi": "/openapi.json",
			"health":  "/health",
			"ready":   "/ready",
			"status":  "/status",
		},
	}, nil
}

// healthBody is GetHealth's whole answer, encoded once.
var healthBody = []byte(`{"status":"ok"}` + "\n")

type healthResponse struct{}

func (healthResponse) VisitGetHealthResponse(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(healthBody)))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(healthBody)
	return err
}

// GetHealth implements api.StrictServerInterface. It touches nothing but memory and
// writes a body encoded once, so probes cost as little as a request can.
func (s *handlers) GetHealth(ctx context.Context, _ api.GetHealthRequestObject) (api.GetHealthResponseObject, error) {
	return healthResponse{}, nil
}

// GetReady implements api.StrictServerInterface.
func (s *handlers) GetReady(ctx context.Context, _ api.GetReadyRequestObject) (api.GetReadyResponseObject, error) {
	if err := s.ready.check(ctx); err != nil {
		return nil, err
	}
	return api.GetReady200JSONResponse{Status: api.ReadyStatusReady, Database: api.ReadyDatabase(s.db.Engine())}, nil
}

// GetStatus implements api.StrictServerInterface. It is public, so it says only that
// the service answers and its version (as GET / does): queue counts span every
// tenant and runtime details help attackers, so they are GetAdminStatus's.
func (s *handlers) GetStatus(ctx context.Context, _ api.GetStatusRequestObject) (api.GetStatusResponseObject, error) {
	return api.GetStatus200JSONResponse{Status: api.StatusStatusOk, Service: "levqor", Version: levqor.Version}, nil
}

// GetAdminStatus implements api.StrictServerInterface.
func (s *handlers) GetAdminStatus(ctx context.Context, _ api.GetAdminStatusRequestObject) (api.GetAdminStatusResponseObject, error) {
	qs, err := s.db.QueueStats(ctx)
	if err != nil {
		return nil, &levqor.Error{Code: levqor.EUnavailable, Message: "The database is not answering.", Err: err}
	}
	out := api.GetAdminStatus200JSONResponse{
		Service:   "levqor",
		Version:   levqor.Version,
		Commit:    levqor.Commit,
		StartedAt: s.started.UTC(),
		UptimeS:   time.Since(s.started).Seconds(),
		Database:  api.AdminStatusDatabase(s.db.Engine()),
		GoVersion: runtime.Version(),
	}
	out.Queue.Depth = map[string]int{}
	for _, st := range []string{jobs.StatusQueued, jobs.StatusScheduled, jobs.StatusRunning, jobs.StatusRetrying, jobs.StatusWaiting, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled} {
		out.Queue.Depth[st] = int(qs.ByStatus[st])
	}
	if s.finished != nil {
		n := int(s.finished())
		out.Queue.FinishedHere = &n
	}
	if qs.OldestDueAt != nil {
		age := max(0, time.Since(*qs.OldestDueAt).Seconds())
		out.Queue.OldestQueuedAgeS = &age
	}
	return out, nil
}

// GetOpenAPIJSON implements api.StrictServerInterface.
func (s *handlers) GetOpenAPIJSON(ctx context.Context, req api.GetOpenAPIJSONRequestObject) (api.GetOpenAPIJSONResponseObject, error) {
	doc, err := s.specJSON()
	if err != nil {
		return nil, err
	}
	return respondDocument(doc, req.Params.IfNoneMatch, nil), nil
}

// GetOpenAPIYAML implements api.StrictServerInterface.
func (s *handlers) GetOpenAPIYAML(ctx context.Context, req api.GetOpenAPIYAMLRequestObject) (api.GetOpenAPIYAMLResponseObject, error) {
	doc, err := s.specYAML()
	if err != nil {
		return nil, err
	}
	return respondDocument(doc, req.Params.IfNoneMatch, nil), nil
}

// GetDocs implements api.StrictServerInterface.
func (s *handlers) GetDocs(ctx context.Context, req api.GetDocsRequestObject) (api.GetDocsResponseObject, error) {
	docs, err := s.docs()
	if err != nil {
		return nil, err
	}
	return respondDocument(docs[""], req.Params.IfNoneMatch, nil), nil
}

// GetDocsAsset implements api.StrictServerInterface.
func (s *handlers) GetDocsAsset(ctx context.Context, req api.GetDocsAssetRequestObject) (api.GetDocsAssetResponseObject, error) {
	docs, err := s.docs()
	if err != nil {
		return nil, err
	}
	d, ok := docs[req.Asset]
	if !ok {
		return nil, levqor.Errorf(levqor.ENotFound, "No such documentation asset.")
	}
	return respondDocument(d, req.Params.IfNoneMatch, req.Params.AcceptEncoding), nil
}
