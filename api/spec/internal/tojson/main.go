// Command tojson writes api/openapi.yaml as the JSON that package spec embeds:
// the document as kin-openapi loads it, marshalled (go generate ./api/spec).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/getkin/kin-openapi/openapi3"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: tojson IN.yaml OUT.json")
		os.Exit(2)
	}
	if err := convert(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "tojson:", err)
		os.Exit(1)
	}
}

func convert(in, out string) error {
	y, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	doc, err := openapi3.NewLoader().LoadFromData(y)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	j, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(j, '\n'), 0o644)
}
