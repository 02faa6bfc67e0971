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

// Document builds the Bundle for one outbox row. An encounter row is built
// from the version the row names (edge.Store.EncounterVersion), never from
// the encounter as it is now, so a row still pending when the visit is
// amended again is sent with its own content. Errors that no retry can
// cure (a record that does not map) wrap ErrUnmappable; store errors do not.
func (m *FHIRMapper) Document(ctx context.Context, item edge.OutboxItem) (string, []byte, error) {
	if _, err := edge.ActorFrom(ctx); err != nil {
		ctx = edge.WithActor(ctx, edge.Actor{Kind: edge.ActorSystem, ID: "syncq"})
	}
	in := fhir.DocumentInput{Item: item, Facility: m.Facility}
	patientID := item.PatientID
	switch item.Entity {
	case fhir.EntityEncounter:
		e, err := m.Store.EncounterVersion(ctx, item.EntityID, item.EntityVersion)
		if err != nil {
			return "", nil, err
		}
		if err := m.setEncounter(ctx, &in, &e); err != nil {
			return "", nil, err
		}
		patientID = e.PatientID
	case fhir.EntityLabOrder:
		o, err := m.Store.LabOrder(ctx, item.EntityID)
		if err != nil {
			return "", nil, err
		}
		// The order's visit as it is now: the report needs the visit's
		// practitioner and patient, not one version's content.
		e, err := m.Store.Encounter(ctx, o.EncounterID)
		if err != nil {
			return "", nil, err
		}
		if err := m.setEncounter(ctx, &in, &e); err != nil {
			return "", nil, err
		}
		patientID = e.PatientID
		if o.Result != nil && o.Result.ResultedBy != "" {
			u, err := m.Store.UserByID(ctx, o.Result.ResultedBy)
			if err != nil {
				return "", nil, err
			}
			in.ResultedBy = &u
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
	if errors.Is(err, fhir.ErrEmptyDocument) && in.Encounter != nil && item.EntityVersion > 1 {
		return m.retract(ctx, in, err)
	}
	if err != nil {
		return "", nil, errors.Join(ErrUnmappable, err)
	}
	return doc.BundleID, doc.JSON, nil
}

// setEncounter puts encounter e and its practitioner into in.
func (m *FHIRMapper) setEncounter(ctx context.Context, in *fhir.DocumentInput, e *edge.Encounter) error {
	in.Encounter, in.Practitioner = e, nil
	if e.PractitionerID == "" {
		return nil
	}
	u, err := m.Store.UserByID(ctx, e.PractitionerID)
	if err != nil {
		return err
	}
	in.Practitioner = &u
	return nil
}

// retract builds the row of an amendment that left nothing for its
// document kind: the content of the last earlier version that had some,
// withdrawn at the row's version (fhir.DocumentInput.Retracted). When no
// earlier version had any (the document was never sent), the row is
// unmappable with the original error, as that version's row was.
func (m *FHIRMapper) retract(ctx context.Context, in fhir.DocumentInput, empty error) (string, []byte, error) {
	in.Retracted = true
	for v := in.Item.EntityVersion - 1; v >= 1; v-- {
		e, err := m.Store.EncounterVersion(ctx, in.Item.EntityID, v)
		if errors.Is(err, edge.ErrNotFound) {
			break
		}
		if err != nil {
			return "", nil, err
		}
		if err := m.setEncounter(ctx, &in, &e); err != nil {
			return "", nil, err
		}
		doc, err := fhir.BuildDocument(in)
		if errors.Is(err, fhir.ErrEmptyDocument) {
			continue
		}
		if err != nil {
			return "", nil, errors.Join(ErrUnmappable, err)
		}
		return doc.BundleID, doc.JSON, nil
	}
	return "", nil, errors.Join(ErrUnmappable, empty)
}
