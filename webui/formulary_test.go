package webui_test

import (
	"testing"

	"github.com/healthpost/healthpost/webui"
)

// Ensure every medicine the visit form offers can be prescribed as offered
// (a drug without a strength once showed with two spaces and was refused).
func TestFormulary_EveryOfferedDrugIsAccepted(t *testing.T) {
	labels := webui.FormularyLabels()
	if len(labels) < 50 {
		t.Fatalf("only %d drugs in the formulary", len(labels))
	}
	for label, ok := range labels {
		if !ok {
			t.Errorf("%q is offered on the visit form but refused when saved", label)
		}
	}
}
