package ai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Price is what a model costs, in US dollars per million tokens.
type Price struct {
	InputPerMillion  float64 `json:"input_per_million" yaml:"input_per_million"`
	OutputPerMillion float64 `json:"output_per_million" yaml:"output_per_million"`
}

// PriceTable maps a model name, exactly as steps and the provider name it, to its price.
// A snapshot ("gpt-4o-2024-05-13") is a different key from its alias ("gpt-4o"): snapshots
// have been priced differently, so a missing one is refused rather than guessed.
type PriceTable map[string]Price

// DefaultPrices returns OpenAI's published list prices (standard tier, per million tokens,
// as of mid-2025) for common chat models. Cached-input discounts are ignored, so costs are
// never under-counted on that account. Prices change: deployments should keep their own
// table current with LoadPrices.
func DefaultPrices() PriceTable {
	return PriceTable{
		"gpt-4o":        {InputPerMillion: 2.50, OutputPerMillion: 10.00},
		"gpt-4o-mini":   {InputPerMillion: 0.15, OutputPerMillion: 0.60},
		"gpt-4.1":       {InputPerMillion: 2.00, OutputPerMillion: 8.00},
		"gpt-4.1-mini":  {InputPerMillion: 0.40, OutputPerMillion: 1.60},
		"gpt-4.1-nano":  {InputPerMillion: 0.10, OutputPerMillion: 0.40},
		"o4-mini":       {InputPerMillion: 1.10, OutputPerMillion: 4.40},
		"gpt-3.5-turbo": {InputPerMillion: 0.50, OutputPerMillion: 1.50},
	}
}

// LoadPrices returns DefaultPrices with the entries of the file at path added or
// replaced. The file is JSON (.json) or YAML (.yaml, .yml), a map from model name to
// {input_per_million, output_per_million}; both fields are required, so a typo cannot
// make a model free.
func LoadPrices(path string) (PriceTable, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load prices: %w", err)
	}
	var entries map[string]struct {
		In  *float64 `json:"input_per_million" yaml:"input_per_million"`
		Out *float64 `json:"output_per_million" yaml:"output_per_million"`
	}
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".json":
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		err = dec.Decode(&entries)
	case ".yaml", ".yml":
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		err = dec.Decode(&entries)
	default:
		return nil, fmt.Errorf("load prices %s: extension %q is neither .json nor .yaml/.yml", path, ext)
	}
	if err != nil {
		return nil, fmt.Errorf("load prices %s: %w", path, err)
	}
	prices := DefaultPrices()
	for model, e := range entries {
		if e.In == nil || e.Out == nil {
			return nil, fmt.Errorf("load prices %s: model %q needs both input_per_million and output_per_million", path, model)
		}
		p := Price{InputPerMillion: *e.In, OutputPerMillion: *e.Out}
		if err := p.validate(model); err != nil {
			return nil, fmt.Errorf("load prices %s: %w", path, err)
		}
		prices[model] = p
	}
	return prices, nil
}

func (p Price) validate(model string) error {
	if strings.TrimSpace(model) == "" {
		return errors.New("a price has an empty model name")
	}
	for _, v := range []float64{p.InputPerMillion, p.OutputPerMillion} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1e6 {
			return fmt.Errorf("model %q has a price that is not a number between 0 and 1e6", model)
		}
	}
	return nil
}

// cost is what the given token counts cost at p.
func (p Price) cost(promptTokens, completionTokens int64) float64 {
	return (float64(promptTokens)*p.InputPerMillion + float64(completionTokens)*p.OutputPerMillion) / 1e6
}
