package server

import (
	"context"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/triggers"
)

var errNoTriggersService = levqor.Errorf(levqor.EUnavailable, "Schedules and inbound triggers are not available on this server.")

func toAPISchedule(s triggers.Schedule, now time.Time) api.Schedule {
	out := api.Schedule{
		Id: s.ID, Workflow: s.Workflow, Cron: s.Cron, TimeZone: s.TimeZone, Payload: s.Payload, Enabled: s.Enabled,
		MisfirePolicy: api.ScheduleMisfirePolicy(s.MisfirePolicy), MisfireGraceS: int(s.MisfireGrace / time.Second),
		NextRuns: []time.Time{}, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
	if s.Enabled {
		out.NextRuns = append(out.NextRuns, triggers.Upcoming(s, now, triggers.NextRuns)...)
	}
	return out
}

// PutSchedule implements api.StrictServerInterface.
func (s *handlers) PutSchedule(ctx context.Context, req api.PutScheduleRequestObject) (api.PutScheduleResponseObject, error) {
	if s.triggers == nil {
		return nil, errNoTriggersService
	}
	b := req.Body
	in := triggers.ScheduleInput{Cron: b.Cron, Enabled: true}
	if b.TimeZone != nil {
		in.TimeZone = *b.TimeZone
	}
	if b.Payload != nil {
		in.Payload = *b.Payload
	}
	if b.Enabled != nil {
		in.Enabled = *b.Enabled
	}
	if b.MisfirePolicy != nil {
		in.MisfirePolicy = string(*b.MisfirePolicy)
	}
	if b.MisfireGraceS != nil {
		in.MisfireGrace = time.Duration(*b.MisfireGraceS) * time.Second
	}
	sch, err := s.triggers.PutSchedule(ctx, principalFrom(ctx), req.Name, req.ScheduleId, in)
	if err != nil {
		return nil, err
	}
	return api.PutSchedule200JSONResponse(toAPISchedule(sch, s.triggers.Now())), nil
}

// GetSchedule implements api.StrictServerInterface.
func (s *handlers) GetSchedule(ctx context.Context, req api.GetScheduleRequestObject) (api.GetScheduleResponseObject, error) {
	if s.triggers == nil {
		return nil, errNoTriggersService
	}
	sch, err := s.triggers.GetSchedule(ctx, principalFrom(ctx), req.Name, req.ScheduleId)
	if err != nil {
		return nil, err
	}
	return api.GetSchedule200JSONResponse(toAPISchedule(sch, s.triggers.Now())), nil
}

// ListSchedules implements api.StrictServerInterface.
func (s *handlers) ListSchedules(ctx context.Context, req api.ListSchedulesRequestObject) (api.ListSchedulesResponseObject, error) {
	if s.triggers == nil {
		return nil, errNoTriggersService
	}
	list, err := s.triggers.ListSchedules(ctx, principalFrom(ctx), req.Name)
	if err != nil {
		return nil, err
	}
	now := s.triggers.Now()
	out := api.ListSchedules200JSONResponse{Data: make([]api.Schedule, len(list))}
	for i, sch := range list {
		out.Data[i] = toAPISchedule(sch, now)
	}
	return out, nil
}

// DeleteSchedule implements api.StrictServerInterface.
func (s *handlers) DeleteSchedule(ctx context.Context, req api.DeleteScheduleRequestObject) (api.DeleteScheduleResponseObject, error) {
	if s.triggers == nil {
		return nil, errNoTriggersService
	}
	if err := s.triggers.DeleteSchedule(ctx, principalFrom(ctx), req.Name, req.ScheduleId); err != nil {
		return nil, err
	}
	return api.DeleteSchedule204Response{}, nil
}

func toAPITrigger(t triggers.Trigger) api.Trigger {
	return api.Trigger{TriggerId: t.ID, Workflow: t.Workflow, Url: "/hooks/" + t.ID, CreatedAt: t.CreatedAt, RolledAt: t.RolledAt}
}

func toAPITriggerSecret(t triggers.TriggerWithSecret) api.TriggerSecret {
	a := toAPITrigger(t.Trigger)
	return api.TriggerSecret{TriggerId: a.TriggerId, Workflow: a.Workflow, Url: a.Url, CreatedAt: a.CreatedAt, RolledAt: a.RolledAt, Secret: t.Secret}
}

// CreateTrigger implements api.StrictServerInterface.
func (s *handlers) CreateTrigger(ctx context.Context, req api.CreateTriggerRequestObject) (api.CreateTriggerResponseObject, error) {
	if s.triggers == nil {
		return nil, errNoTriggersService
	}
	t, err := s.triggers.CreateTrigger(ctx, principalFrom(ctx), req.Name)
	if err != nil {
		return nil, err
	}
	return api.CreateTrigger201JSONResponse(toAPITriggerSecret(t)), nil
}

// RollTrigger implements api.StrictServerInterface.
func (s *handlers) RollTrigger(ctx context.Context, req api.RollTriggerRequestObject) (api.RollTriggerResponseObject, error) {
	if s.triggers == nil {
		return nil, errNoTriggersService
	}
	t, err := s.triggers.RollTrigger(ctx, principalFrom(ctx), req.Name, req.TriggerId)
	if err != nil {
		return nil, err
	}
	return api.RollTrigger200JSONResponse(toAPITriggerSecret(t)), nil
}

// ListTriggers implements api.StrictServerInterface.
func (s *handlers) ListTriggers(ctx context.Context, req api.ListTriggersRequestObject) (api.ListTriggersResponseObject, error) {
	if s.triggers == nil {
		return nil, errNoTriggersService
	}
	list, err := s.triggers.ListTriggers(ctx, principalFrom(ctx), req.Name)
	if err != nil {
		return nil, err
	}
	out := api.ListTriggers200JSONResponse{Data: make([]api.Trigger, len(list))}
	for i, t := range list {
		out.Data[i] = toAPITrigger(t)
	}
	return out, nil
}

// DeleteTrigger implements api.StrictServerInterface.
func (s *handlers) DeleteTrigger(ctx context.Context, req api.DeleteTriggerRequestObject) (api.DeleteTriggerResponseObject, error) {
	if s.triggers == nil {
		return nil, errNoTriggersService
	}
	if err := s.triggers.DeleteTrigger(ctx, principalFrom(ctx), req.Name, req.TriggerId); err != nil {
		return nil, err
	}
	return api.DeleteTrigger204Response{}, nil
}

// ReceiveHook implements api.StrictServerInterface. The signature covers the raw
// body exactly as sent, which guardJSON kept; the decoded body is not used.
func (s *handlers) ReceiveHook(ctx context.Context, req api.ReceiveHookRequestObject) (api.ReceiveHookResponseObject, error) {
	if s.triggers == nil {
		return nil, errNoTriggersService
	}
	info := requestInfoFrom(ctx)
	if info == nil || info.body == nil {
		return nil, levqor.Errorf(levqor.EInvalid, "The body must be a JSON object.")
	}
	if len(info.body) > jobs.MaxPayloadBytes {
		return nil, levqor.Errorf(levqor.ETooLarge, "The request body is larger than %d bytes.", jobs.MaxPayloadBytes)
	}
	d := triggers.Delivery{TriggerID: req.TriggerId, Body: info.body}
	if req.Params.LevqorSignature != nil {
		d.Signature = *req.Params.LevqorSignature
	}
	if req.Params.LevqorDelivery != nil {
		d.ID = *req.Params.LevqorDelivery
	}
	if s.limits != nil {
		// Each trigger has the budget of an API key (LEVQOR_RATE_LIMIT_KEY), spent only
		// by deliveries whose signature verifies: nobody else can exhaust it.
		d.Admit = func(ctx context.Context) error {
			return s.limits.take(ctx, info.header, quota{name: "trigger:" + req.TriggerId, lim: s.limits.key})
		}
	}
	j, _, err := s.triggers.Receive(ctx, d)
	if err != nil {
		return nil, err
	}
	loc := "/api/v1/jobs/" + j.ID
	return api.ReceiveHook202JSONResponse{
		Body:    api.JobAccepted{JobId: j.ID, Status: api.JobStatus(j.Status), Workflow: j.Workflow, CreatedAt: j.CreatedAt, RunAt: j.RunAt},
		Headers: api.ReceiveHook202ResponseHeaders{Location: &loc},
	}, nil
}
