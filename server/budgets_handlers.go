package server

import (
	"context"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/gen/api"
)

func toAPIPeriod(p budget.Period) api.UsagePeriod {
	out := api.UsagePeriod{Period: p.Name, SpentUsd: p.Spent.USD(), ReservedUsd: p.Reserved.USD(), LimitUsd: p.Limit.USD(),
		RemainingUsd: p.Remaining().USD(), ByModel: map[string]float64{}}
	for m, n := range p.ByModel {
		out.ByModel[m] = n.USD()
	}
	return out
}

// GetUsage implements api.StrictServerInterface: the caller's own owner, or (admins) any.
func (s *handlers) GetUsage(ctx context.Context, req api.GetUsageRequestObject) (api.GetUsageResponseObject, error) {
	p := principalFrom(ctx)
	owner := p.OwnerID
	if req.Params.OwnerId != nil {
		if !p.Admin() && *req.Params.OwnerId != p.OwnerID {
			return nil, levqor.Errorf(levqor.EForbidden, "Only admin keys may read another owner's usage.")
		}
		owner = *req.Params.OwnerId
	}
	day, month, err := s.budgets.Usage(ctx, owner)
	if err != nil {
		return nil, err
	}
	return api.GetUsage200JSONResponse{OwnerId: owner, Day: toAPIPeriod(day), Month: toAPIPeriod(month)}, nil
}

// PutOwnerBudget implements api.StrictServerInterface.
func (s *handlers) PutOwnerBudget(ctx context.Context, req api.PutOwnerBudgetRequestObject) (api.PutOwnerBudgetResponseObject, error) {
	l := budget.Limits{Daily: budget.USDToNanos(req.Body.DailyUsd), Monthly: budget.USDToNanos(req.Body.MonthlyUsd)}
	if err := s.budgets.SetLimits(ctx, req.OwnerId, &l); err != nil {
		return nil, err
	}
	return api.PutOwnerBudget200JSONResponse{DailyUsd: l.Daily.USD(), MonthlyUsd: l.Monthly.USD()}, nil
}

// DeleteOwnerBudget implements api.StrictServerInterface.
func (s *handlers) DeleteOwnerBudget(ctx context.Context, req api.DeleteOwnerBudgetRequestObject) (api.DeleteOwnerBudgetResponseObject, error) {
	if err := s.budgets.SetLimits(ctx, req.OwnerId, nil); err != nil {
		return nil, err
	}
	return api.DeleteOwnerBudget204Response{}, nil
}
