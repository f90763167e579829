package ai

import (
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// This mirrors connectors/schema.go's reporting, which is unexported: violations name a
// JSON pointer and the rule, never the offending value (model output is not echoed into
// step errors).

var printer = message.NewPrinter(language.English)

func describe(ve *jsonschema.ValidationError) []string {
	var lines []string
	for _, v := range leaves(ve) {
		lines = append(lines, "at "+pointer(v.InstanceLocation)+": "+rule(v.ErrorKind))
	}
	slices.Sort(lines)
	return slices.Compact(lines)
}

// leaves descends through the wrappers (the schema itself, $ref, allOf) to the keywords that failed.
func leaves(ve *jsonschema.ValidationError) []*jsonschema.ValidationError {
	switch ve.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.Reference, *kind.AllOf:
		if len(ve.Causes) == 0 {
			return []*jsonschema.ValidationError{ve}
		}
		var out []*jsonschema.ValidationError
		for _, c := range ve.Causes {
			out = append(out, leaves(c)...)
		}
		return out
	}
	return []*jsonschema.ValidationError{ve}
}

func pointer(tokens []string) string {
	if len(tokens) == 0 {
		return "(root)"
	}
	r := strings.NewReplacer("~", "~0", "/", "~1")
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		sb.WriteString(r.Replace(t))
	}
	return sb.String()
}

func num(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func rule(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return fmt.Sprintf("type: got %s, want %s", k.Got, strings.Join(k.Want, " or "))
	case *kind.Pattern:
		return fmt.Sprintf("pattern: must match %q", k.Want)
	case *kind.Format:
		return fmt.Sprintf("format: must be a valid %s", k.Want)
	case *kind.FalseSchema:
		return "not allowed here"
	case *kind.Required:
		return "required: " + k.LocalizedString(printer)
	case *kind.AdditionalProperties:
		return "additionalProperties: " + k.LocalizedString(printer)
	case *kind.Enum:
		return "enum: " + k.LocalizedString(printer)
	case *kind.Const:
		return "const: " + k.LocalizedString(printer)
	case *kind.Not:
		return "not: matches a schema it must not match"
	case *kind.Minimum:
		return fmt.Sprintf("minimum: got %s, want %s", num(k.Got), num(k.Want))
	case *kind.Maximum:
		return fmt.Sprintf("maximum: got %s, want %s", num(k.Got), num(k.Want))
	case *kind.ExclusiveMinimum:
		return fmt.Sprintf("exclusiveMinimum: got %s, want more than %s", num(k.Got), num(k.Want))
	case *kind.ExclusiveMaximum:
		return fmt.Sprintf("exclusiveMaximum: got %s, want less than %s", num(k.Got), num(k.Want))
	case *kind.MultipleOf:
		return fmt.Sprintf("multipleOf: got %s, want a multiple of %s", num(k.Got), num(k.Want))
	case *kind.MinLength:
		return fmt.Sprintf("minLength: got %d, want %d", k.Got, k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("maxLength: got %d, want %d", k.Got, k.Want)
	case *kind.MinItems:
		return fmt.Sprintf("minItems: got %d, want %d", k.Got, k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("maxItems: got %d, want %d", k.Got, k.Want)
	case *kind.MinProperties:
		return fmt.Sprintf("minProperties: got %d, want %d", k.Got, k.Want)
	case *kind.MaxProperties:
		return fmt.Sprintf("maxProperties: got %d, want %d", k.Got, k.Want)
	}
	// Other keywords' texts may quote the value; name the keyword alone.
	if kw := k.KeywordPath(); len(kw) > 0 {
		return kw[len(kw)-1] + ": not satisfied"
	}
	return "not satisfied"
}
