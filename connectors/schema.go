package connectors

import (
	"bytes"
	"errors"
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

// maxReportedViolations bounds how many schema violations one message lists.
const maxReportedViolations = 3

var printer = message.NewPrinter(language.English)

// noLoader refuses every $ref to a resource that was not registered: action schemas
// must be self-contained, and compiling one must never touch the network or the disk.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema loading is disabled (%s)", url)
}

// compileSchema compiles one action's input schema (draft 2020-12 unless it says otherwise).
func compileSchema(connector, action string, raw []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("input schema is not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	loc := "levqor:///connectors/" + connector + "/" + action + ".json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	return c.Compile(loc)
}

// validateInput checks input against sch and returns a *StepError (invalid_input) naming
// the JSON pointer and the rule of each violation, without repeating the input's values.
func validateInput(sch *jsonschema.Schema, input []byte) error {
	doc, err := decodeInput(input)
	if err != nil {
		return err
	}
	err = sch.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &StepError{Code: CodeInvalidInput, Message: "input could not be validated", Err: err}
	}
	lines := Violations(ve)
	more := ""
	if len(lines) > maxReportedViolations {
		more = fmt.Sprintf(" (and %d more)", len(lines)-maxReportedViolations)
		lines = lines[:maxReportedViolations]
	}
	return &StepError{Code: CodeInvalidInput, Message: "invalid input " + strings.Join(lines, "; ") + more}
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

// decodeInput parses one JSON value, numbers kept exact, with nothing after it.
func decodeInput(input []byte) (any, error) {
	if len(bytes.TrimSpace(input)) == 0 {
		return nil, Errorf(CodeInvalidInput, "input is empty; send a JSON object")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(input))
	if err != nil {
		return nil, &StepError{Code: CodeInvalidInput, Message: "input is not valid JSON", Err: err}
	}
	return doc, nil
}

// Violations describes a validation failure as sorted, distinct lines "at <JSON
// pointer>: <rule>", never repeating the offending values (inputs and model output may
// hold secrets). Every schema check in Levqor reports through it.
func Violations(ve *jsonschema.ValidationError) []string {
	var lines []string
	for _, v := range violations(ve) {
		lines = append(lines, "at "+pointer(v.InstanceLocation)+": "+rule(v.ErrorKind))
	}
	slices.Sort(lines)
	return slices.Compact(lines)
}

// violations returns the errors worth reporting: it descends through the wrappers
// (the schema itself, $ref, allOf) down to the keywords that actually failed.
func violations(ve *jsonschema.ValidationError) []*jsonschema.ValidationError {
	switch ve.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.Reference, *kind.AllOf:
		if len(ve.Causes) == 0 {
			return []*jsonschema.ValidationError{ve}
		}
		var out []*jsonschema.ValidationError
		for _, c := range ve.Causes {
			out = append(out, violations(c)...)
		}
		return out
	}
	return []*jsonschema.ValidationError{ve}
}

// pointer renders an instance location as a JSON Pointer (RFC 6901); the root is "(root)".
func pointer(tokens []string) string {
	if len(tokens) == 0 {
		return "(root)"
	}
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		sb.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return sb.String()
}

// rule describes a failed keyword. Where the library's text would quote the offending
// string value (which may be a secret), it is rewritten without it.
func rule(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return fmt.Sprintf("type: got %s, want %s", k.Got, strings.Join(k.Want, " or "))
	case *kind.Pattern:
		return fmt.Sprintf("pattern: must match %q", k.Want)
	case *kind.Format:
		return fmt.Sprintf("format: must be a valid %s", k.Want)
	case *kind.ContentEncoding:
		return fmt.Sprintf("contentEncoding: must be %s encoded", k.Want)
	case *kind.ContentMediaType:
		return fmt.Sprintf("contentMediaType: must be of media type %s", k.Want)
	case *kind.FalseSchema:
		return "not allowed here"
	case *kind.Required:
		return "required: " + k.LocalizedString(printer)
	case *kind.AdditionalProperties:
		return "additionalProperties: " + k.LocalizedString(printer)
	case *kind.PropertyNames:
		return fmt.Sprintf("propertyNames: name %q is not allowed", k.Property)
	case *kind.Enum:
		return "enum: " + k.LocalizedString(printer)
	case *kind.Const:
		return "const: " + k.LocalizedString(printer)
	case *kind.Not:
		return "not: matches a schema it must not match"
	// Numbers are written here because the library's printer groups digits ("60,000").
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
	return k.LocalizedString(printer)
}
