package syncq

import (
	"context"
	"errors"
	"fmt"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq/fhir"
)

// FHIRMapper is the Mapper of a real node: it reads the records an outbox row
// names (each read audited as system:syncq) and builds the ABDM document
// with syncq/fhir.
type FHIRMapper struct {
	Store    *edge.Store
	Facility edge.FacilityConfig
}

// NewFHIRMapper returns the mapper for a node whose facility identity is f.
// ABDM documents name the facility by its HFR ID, so delivery cannot start
// without one.
func NewFHIRMapper(s *edge.Store, f edge.FacilityConfig) (*FHIRMapper, error) {
	if f.HFRID == "" || f.Name == "" {
		return nil, &edge.Error{Code: "hfr_id_missing",
			Message: "records cannot be sent upstream: the facility has no HFR ID or name in the config",
			Hint:    "set facility.hfr_id (IN followed by 10 letters or digits) and facility.name in healthpost.toml"}
	}
	return &FHIRMapper{Store: s, Facility: f}, nil
}

// Document builds the Bundle for one outbox row. Errors that no retry can
// cure (a record that does not map) wrap ErrUnmappable; store errors do not.
func (m *FHIRMapper) Document(ctx context.Context, item edge.OutboxItem) (string, []byte, error) {
	if _, err := edge.ActorFrom(ctx); err != nil {
		ctx = edge.WithActor(ctx, edge.Actor{Kind: edge.ActorSystem, ID: "syncq"})
	}
	in := fhir.DocumentInput{Item: item, Facility: m.Facility}
	patientID := item.PatientID
	switch item.Entity {
	case fhir.EntityEncounter:
		e, err := m.Store.Encounter(ctx, item.EntityID)
		if err != nil {
			return "", nil, err
		}
		in.Encounter, patientID = &e, e.PatientID
		if e.PractitionerID != "" {
			u, err := m.Store.UserByID(ctx, e.PractitionerID)
			if err != nil {
				return "", nil, err
			}
			in.Practitioner = &u
		}
	case fhir.EntityObservation:
		o, pid, err := m.Store.Observation(ctx, item.EntityID)
		if err != nil {
			return "", nil, err
		}
		in.Observation, patientID = &o, pid
		devs, err := m.Store.Devices(ctx)
		if err != nil {
			return "", nil, err
		}
		in.Devices = devs
	default:
		return "", nil, fmt.Errorf("%w: outbox rows for %q are not documents", ErrUnmappable, item.Entity)
	}
	p, err := m.Store.Patient(ctx, patientID)
	if err != nil {
		return "", nil, err
	}
	in.Patient = p
	doc, err := fhir.BuildDocument(in)
	if err != nil {
		return "", nil, errors.Join(ErrUnmappable, err)
	}
	return doc.BundleID, doc.JSON, nil
}
