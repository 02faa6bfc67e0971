package vitals

// TableErrs exposes problems found while indexing the static tables.
func TableErrs() []string { return tableErrs }

// MDCMetric is one row of the MDC metric table, for tests.
type MDCMetric struct{ Code, RefID, LOINC string }

// MDCMetrics returns the MDC metric table.
func MDCMetrics() []MDCMetric {
	out := make([]MDCMetric, len(mdcMetrics))
	for i, m := range mdcMetrics {
		out[i] = MDCMetric{m.code, m.refID, m.loinc}
	}
	return out
}

// UnitSpelling is one spelling of a unit, for tests.
type UnitSpelling struct{ Spelling, UCUM string }

// UnitSpellings returns every spelling the unit table lists: aliases, MDC
// codes and MDC reference ids.
func UnitSpellings() []UnitSpelling {
	var out []UnitSpelling
	for _, d := range units {
		for _, a := range d.aliases {
			out = append(out, UnitSpelling{a, d.unit.UCUM})
		}
		for _, m := range d.mdc {
			if m.code != "" {
				out = append(out, UnitSpelling{m.code, d.unit.UCUM})
			}
			out = append(out, UnitSpelling{m.refID, d.unit.UCUM})
		}
	}
	return out
}
