package fhir_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/synctest"
)

// Ensure every document of a realistic backlog, as the node's mapper builds
// it from a real store (OPD visits with vitals from devices and by hand, a
// diagnosis and drug lines, malaria tests and referrals; antenatal visits
// with lab results and Td doses; immunization sessions; hypertension
// follow-ups; lab results entered later; amendments, one in three
// withdrawing a prescription; device readings outside any visit; names and
// notes in Hindi), passes the FHIR R4 JSON schema and the IG's profiles. The delivery tests and benchmarks
// send this backlog.
func TestBacklogDocuments_PassSchemaAndIG(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	st := synctest.Backlog{Patients: 60, Encounters: 200}.MustCopy(t, path)
	s := edgetest.MustOpenStoreAt(t, path)
	m, err := syncq.NewFHIRMapper(s, synctest.BacklogFacility)
	if err != nil {
		t.Fatal(err)
	}
	items := mustAllOutbox(t, s, path)
	if len(items) != st.Documents || st.Amended == 0 || st.Readings == 0 {
		t.Fatalf("backlog %+v, outbox rows %d: want amendments and readings too", st, len(items))
	}
	kinds, resources := map[string]int{}, map[string]int{}
	resourceTypes := []string{"Practitioner", "Device", "Condition", "MedicationRequest", "ServiceRequest", "DiagnosticReport", "Immunization", "DocumentReference"}
	withdrawn := 0
	for i := 0; i < len(items); i += syncq.DefaultBatchSize {
		batch := items[i:min(i+syncq.DefaultBatchSize, len(items))]
		for k, r := range m.Documents(context.Background(), batch) {
			it := batch[k]
			if r.Err != nil {
				t.Fatalf("%s: %v", it.Key, r.Err)
			}
			t.Run(fmt.Sprint(it.ID), func(t *testing.T) {
				MustPassSchemaByType(t, r.Body)
				MustPassIG(t, r.Body)
			})
			kinds[fmt.Sprintf("%s/%s/v%d", it.Document, it.Entity, min(it.EntityVersion, 2))]++
			if bytes.Contains(r.Body, []byte(`"status":"entered-in-error"`)) {
				withdrawn++
			}
			for _, rt := range resourceTypes {
				if bytes.Contains(r.Body, []byte(`"resourceType":"`+rt+`"`)) {
					resources[rt]++
				}
			}
		}
	}
	for _, k := range []string{"OPConsultRecord/encounter/v1", "PrescriptionRecord/encounter/v1", "WellnessRecord/encounter/v1",
		"ImmunizationRecord/encounter/v1", "WellnessRecord/observation/v1", "OPConsultRecord/encounter/v2", "PrescriptionRecord/encounter/v2",
		"DiagnosticReportRecord/lab_order/v1"} {
		if kinds[k] == 0 {
			t.Errorf("the backlog has no %s document", k)
		}
	}
	for _, rt := range resourceTypes {
		if resources[rt] == 0 {
			t.Errorf("no document of the backlog has a %s", rt)
		}
	}
	if withdrawn == 0 {
		t.Error("the backlog has no withdrawn document (an amendment that removed a prescription)")
	}
	t.Logf("%d documents (%d withdrawn): %v", len(items), withdrawn, kinds)
}

// mustAllOutbox lists every outbox row, in commit order.
func mustAllOutbox(tb testing.TB, s *edge.Store, path string) []edge.OutboxItem {
	tb.Helper()
	rows, err := edgetest.MustRawDB(tb, path).Query(`SELECT id FROM outbox ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	out := make([]edge.OutboxItem, 0, len(ids))
	for _, id := range ids {
		it, err := s.OutboxItem(context.Background(), id)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, it)
	}
	return out
}

// MustPassSchemaByType checks a bundle as MustPassSchema does, faster: the
// Bundle without its entries' resources against the schema's Bundle, and
// each resource against the definition of its resourceType. That is what
// validating against the root does (entry.resource is one of all
// resources, told apart by resourceType), without trying the other 144.
func MustPassSchemaByType(tb testing.TB, data []byte) {
	tb.Helper()
	MustSchema(tb)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := inst.(map[string]any)
	var errs []error
	entries, _ := b["entry"].([]any)
	for i, e := range entries {
		em, _ := e.(map[string]any)
		res, _ := em["resource"].(map[string]any)
		t, _ := res["resourceType"].(string)
		def := schemaDefs[t]
		if def == nil {
			MustPassSchema(tb, data) // a type without a compiled definition: the root decides
			return
		}
		if err := def.Validate(res); err != nil {
			errs = append(errs, fmt.Errorf("entry[%d]: %w", i, err))
		}
		delete(em, "resource")
	}
	if err := schemaDefs["Bundle"].Validate(b); err != nil {
		errs = append(errs, fmt.Errorf("bundle: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		tb.Fatalf("FHIR JSON schema: %v", err)
	}
}
