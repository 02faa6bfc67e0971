package fhir_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/healthpost/healthpost/edge"
)

// The official FHIR R4 (4.0.1) JSON schema, draft-06, validated with a real
// JSON-schema validator. It checks structure (element names, types,
// required elements, code enumerations, primitive regexes); profiles are
// igcheck's job.

var (
	schemaOnce sync.Once
	schemaAll  *jsonschema.Schema            // the schema's root: any resource
	schemaDefs map[string]*jsonschema.Schema // by resource type, for readable errors
	schemaErr  error
)

// MustSchema compiles the schema once per test binary (about a second).
func MustSchema(tb testing.TB) *jsonschema.Schema {
	tb.Helper()
	schemaOnce.Do(func() {
		var data []byte
		data, schemaErr = os.ReadFile(schemaPath)
		if schemaErr != nil {
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			schemaErr = err
			return
		}
		c := jsonschema.NewCompiler()
		if schemaErr = c.AddResource("fhir.schema.json", doc); schemaErr != nil {
			return
		}
		if schemaAll, schemaErr = c.Compile("fhir.schema.json"); schemaErr != nil {
			return
		}
		schemaDefs = map[string]*jsonschema.Schema{}
		for _, t := range []string{"Bundle", "Composition", "Patient", "Organization", "Practitioner", "Encounter", "Device",
			"Condition", "Observation", "MedicationRequest", "DocumentReference", "Immunization",
			"ServiceRequest", "DiagnosticReport"} {
			if schemaDefs[t], schemaErr = c.Compile("fhir.schema.json#/definitions/" + t); schemaErr != nil {
				return
			}
		}
	})
	if schemaErr != nil {
		tb.Fatalf("load FHIR JSON schema %s: %v", schemaPath, schemaErr)
	}
	return schemaAll
}

// schemaErrors validates a resource against the schema's root (the official
// entry point: one of all resources). When it fails, it names the failing
// entries, each validated against its own definition so the message says
// what is wrong rather than which of 145 resource types it is not.
func schemaErrors(tb testing.TB, data []byte) error {
	tb.Helper()
	sch := MustSchema(tb)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	if err := sch.Validate(inst); err == nil {
		return nil
	}
	var msgs []string
	check := func(where string, v any) {
		m, _ := v.(map[string]any)
		t, _ := m["resourceType"].(string)
		def := schemaDefs[t]
		if def == nil {
			msgs = append(msgs, fmt.Sprintf("%s: resourceType %q", where, t))
			return
		}
		var ve *jsonschema.ValidationError
		if err := def.Validate(v); errors.As(err, &ve) {
			for _, u := range leaves(ve) {
				msgs = append(msgs, where+": "+u)
			}
		}
	}
	m, _ := inst.(map[string]any)
	entries, _ := m["entry"].([]any)
	for i, e := range entries {
		em, _ := e.(map[string]any)
		check(fmt.Sprintf("entry[%d]", i), em["resource"])
	}
	if len(msgs) == 0 {
		check("bundle", inst)
	}
	return fmt.Errorf("FHIR JSON schema: %s", strings.Join(msgs, "; "))
}

// leaves lists the innermost causes of a validation error.
func leaves(ve *jsonschema.ValidationError) []string {
	if len(ve.Causes) == 0 {
		return []string{fmt.Sprintf("%s: %v", "/"+strings.Join(ve.InstanceLocation, "/"), ve.ErrorKind)}
	}
	var out []string
	for _, c := range ve.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

// MustPassSchema fails the test if data is not a valid FHIR R4 resource.
func MustPassSchema(tb testing.TB, data []byte) {
	tb.Helper()
	if err := schemaErrors(tb, data); err != nil {
		tb.Fatal(err)
	}
}

// Ensure the schema check is not vacuous: each structural break of a valid
// bundle of ours is reported, with the entry it is in.
func TestSchema_CatchesBreaks(t *testing.T) {
	valid := MustBuild(t, encounterInput(edge.DocOPConsult)).JSON
	MustPassSchema(t, valid)
	cases := []struct {
		name   string
		mutate func(b map[string]any)
		want   string
	}{
		{"BundleType", func(b map[string]any) { b["type"] = "documentx" }, "bundle"},
		{"Gender", func(b map[string]any) { resources(b, "Patient")[0]["gender"] = "woman" }, "/gender"},
		{"UnknownElement", func(b map[string]any) { resources(b, "Encounter")[0]["ward"] = "OPD" }, "ward"},
		{"EmptyString", func(b map[string]any) { resources(b, "Organization")[0]["name"] = "" }, "/name"},
		{"BadDateTime", func(b map[string]any) { resources(b, "Observation")[0]["effectiveDateTime"] = "14/03/2025" }, "/effectiveDateTime"},
		{"NoSubject", func(b map[string]any) { delete(resources(b, "MedicationRequest")[0], "subject") }, "subject"},
		{"StatusNotInEnum", func(b map[string]any) { resources(b, "Composition")[0]["status"] = "done" }, "/status"},
		{"BadID", func(b map[string]any) { resources(b, "Condition")[0]["id"] = "not an id!" }, "/id"},
		{"DecimalAsString", func(b map[string]any) {
			asMap(resources(b, "Observation")[1]["valueQuantity"])["value"] = "92"
		}, "/value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := MustDecode(t, valid)
			tc.mutate(b)
			data, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			err = schemaErrors(t, data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
