package syncq_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// fhirSchemaFile is the official FHIR R4 (4.0.1) JSON schema; a missing
// file fails the test.
const fhirSchemaFile = "../../shared/fhir/fhir.schema.json"

var (
	fhirSchemaOnce sync.Once
	fhirSchemaRoot *jsonschema.Schema            // any resource
	fhirSchemaDefs map[string]*jsonschema.Schema // by resource type
	fhirSchemaErr  error
)

// fhirDocumentTypes are the resource types the mapper puts in a document.
var fhirDocumentTypes = []string{"Bundle", "Composition", "Patient", "Organization", "Practitioner", "Encounter", "Device",
	"Condition", "Observation", "MedicationRequest", "DocumentReference", "Immunization", "ServiceRequest", "DiagnosticReport"}

// mustFHIRSchema compiles the schema once per test binary.
func mustFHIRSchema(tb testing.TB) {
	tb.Helper()
	fhirSchemaOnce.Do(func() {
		data, err := os.ReadFile(fhirSchemaFile)
		if err != nil {
			fhirSchemaErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			fhirSchemaErr = err
			return
		}
		c := jsonschema.NewCompiler()
		if fhirSchemaErr = c.AddResource("fhir.schema.json", doc); fhirSchemaErr != nil {
			return
		}
		if fhirSchemaRoot, fhirSchemaErr = c.Compile("fhir.schema.json"); fhirSchemaErr != nil {
			return
		}
		fhirSchemaDefs = map[string]*jsonschema.Schema{}
		for _, t := range fhirDocumentTypes {
			if fhirSchemaDefs[t], fhirSchemaErr = c.Compile("fhir.schema.json#/definitions/" + t); fhirSchemaErr != nil {
				return
			}
		}
	})
	if fhirSchemaErr != nil {
		tb.Fatalf("load the FHIR R4 JSON schema %s: %v", fhirSchemaFile, fhirSchemaErr)
	}
}

// MustPassFHIRSchema fails the test when body is not a valid FHIR R4
// Bundle by the official JSON schema.
func MustPassFHIRSchema(tb testing.TB, name string, body []byte) {
	tb.Helper()
	mustFHIRSchema(tb)
	if err := fhirSchemaErrors(body); err != nil {
		tb.Fatalf("%s fails the FHIR R4 JSON schema: %v", name, err)
	}
}

// fhirSchemaErrors checks a Bundle as validating it against the schema's
// root does, faster: the Bundle without its entries' resources against the
// schema's Bundle, and each resource against the definition of its
// resourceType (the root's entry.resource is one of all resources, told
// apart by resourceType); a resource of another type goes to the root.
func fhirSchemaErrors(body []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	b, _ := inst.(map[string]any)
	if t, _ := b["resourceType"].(string); t != "Bundle" {
		return fmt.Errorf("a %q, not a Bundle", b["resourceType"])
	}
	var errs []error
	entries, _ := b["entry"].([]any)
	for i, e := range entries {
		em, _ := e.(map[string]any)
		res, ok := em["resource"].(map[string]any)
		if !ok {
			continue // the Bundle's own check says what is wrong
		}
		t, _ := res["resourceType"].(string)
		def := fhirSchemaDefs[t]
		if def == nil {
			def = fhirSchemaRoot
		}
		if err := def.Validate(res); err != nil {
			errs = append(errs, fmt.Errorf("entry[%d] %s: %w", i, t, err))
		}
		delete(em, "resource")
	}
	if err := fhirSchemaDefs["Bundle"].Validate(b); err != nil {
		errs = append(errs, fmt.Errorf("Bundle: %w", err))
	}
	return errors.Join(errs...)
}

func TestFHIRSchemaCheck_CatchesBreaks(t *testing.T) {
	// Ensure the fast check is not vacuous: a break in a resource, in a
	// resource of a type it has no definition for, and in the Bundle itself
	// each fail it.
	mustFHIRSchema(t)
	valid := `{"resourceType":"Bundle","type":"document","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","gender":"female"}}]}`
	if err := fhirSchemaErrors([]byte(valid)); err != nil {
		t.Fatalf("valid bundle: %v", err)
	}
	for name, body := range map[string]string{
		"BadGender":    `{"resourceType":"Bundle","type":"document","entry":[{"resource":{"resourceType":"Patient","gender":"woman"}}]}`,
		"BadAllergy":   `{"resourceType":"Bundle","type":"document","entry":[{"resource":{"resourceType":"AllergyIntolerance","criticality":"very"}}]}`,
		"NoSuchType":   `{"resourceType":"Bundle","type":"document","entry":[{"resource":{"resourceType":"Patientx"}}]}`,
		"BadBundle":    `{"resourceType":"Bundle","type":"documentx","entry":[{"resource":{"resourceType":"Patient"}}]}`,
		"NotAResource": `{"resourceType":"Bundle","type":"document","entry":[{"resource":"Patient"}]}`,
	} {
		if err := fhirSchemaErrors([]byte(body)); err == nil {
			t.Errorf("%s passed the schema check", name)
		}
	}
}
