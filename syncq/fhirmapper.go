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
//
// It is a BatchMapper. Documents, which the engine calls once per request,
// reads the records of every row of the request in one read transaction
// and hands their audit entries to the store in one go, so they commit
// together (edge.Store.ReadOutboxRecords). Document builds one row's
// document from the store's one-record reads, each read and audited on its
// own; both give the same bytes for the same row.
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

// recordReader reads, for each outbox row, the records its document is
// built from: edge.Store.ReadOutboxRecords, or readEach. Only the rows'
// Entity, EntityID and EntityVersion are read.
type recordReader func(ctx context.Context, items []edge.OutboxItem) ([]edge.OutboxRecords, error)

// Documents builds the Bundles of several outbox rows, reading all their
// records in one read transaction and committing the audit entries of
// those reads in one write transaction. Each row gets its
// own result, as Document would give it: a row that does not map fails
// alone. When the read itself fails (a busy database), every row gets that
// error and is tried again later.
func (m *FHIRMapper) Documents(ctx context.Context, items []edge.OutboxItem) []Mapped {
	return m.build(ctx, items, m.Store.ReadOutboxRecords)
}

// Document builds the Bundle for one outbox row. An encounter row is built
// from the version the row names (edge.Store.EncounterVersion), never from
// the encounter as it is now, so a row still pending when the visit is
// amended again is sent with its own content. Errors that no retry can
// cure (a record that does not map) wrap ErrUnmappable or edge.ErrNotFound;
// store errors do not.
func (m *FHIRMapper) Document(ctx context.Context, item edge.OutboxItem) (string, []byte, error) {
	r := m.build(ctx, []edge.OutboxItem{item}, m.readEach)[0]
	return r.BundleID, r.Body, r.Err
}

// readEach reads each row's records with the store's one-record methods,
// each read audited on its own, waiting for its entry's commit.
func (m *FHIRMapper) readEach(ctx context.Context, items []edge.OutboxItem) ([]edge.OutboxRecords, error) {
	out := make([]edge.OutboxRecords, len(items))
	for i, it := range items {
		out[i] = m.readOne(ctx, it)
	}
	return out, nil
}

func (m *FHIRMapper) readOne(ctx context.Context, it edge.OutboxItem) (rec edge.OutboxRecords) {
	var patientID string
	switch it.Entity {
	case edge.EntityEncounter:
		e, err := m.Store.EncounterVersion(ctx, it.EntityID, it.EntityVersion)
		if err != nil {
			return edge.OutboxRecords{Err: err}
		}
		rec.Encounter, patientID = &e, e.PatientID
		if e.PractitionerID != "" {
			u, err := m.Store.UserByID(ctx, e.PractitionerID)
			if err != nil {
				return edge.OutboxRecords{Err: err}
			}
			rec.Practitioner = &u
		}
	case edge.EntityLabOrder:
		o, err := m.Store.LabOrder(ctx, it.EntityID)
		if err != nil {
			return edge.OutboxRecords{Err: err}
		}
		// The order's visit as it is now: the report needs the visit's
		// practitioner and patient, not one version's content.
		e, err := m.Store.Encounter(ctx, o.EncounterID)
		if err != nil {
			return edge.OutboxRecords{Err: err}
		}
		rec.Encounter, patientID = &e, e.PatientID
		if e.PractitionerID != "" {
			u, err := m.Store.UserByID(ctx, e.PractitionerID)
			if err != nil {
				return edge.OutboxRecords{Err: err}
			}
			rec.Practitioner = &u
		}
		if o.Result != nil && o.Result.ResultedBy != "" {
			u, err := m.Store.UserByID(ctx, o.Result.ResultedBy)
			if err != nil {
				return edge.OutboxRecords{Err: err}
			}
			rec.ResultedBy = &u
		}
	case edge.EntityObservation:
		o, pid, err := m.Store.Observation(ctx, it.EntityID)
		if err != nil {
			return edge.OutboxRecords{Err: err}
		}
		rec.Observation, patientID = &o, pid
		if rec.Devices, err = m.Store.Devices(ctx); err != nil {
			return edge.OutboxRecords{Err: err}
		}
	default:
		return edge.OutboxRecords{Err: fmt.Errorf("outbox entity %q: %w", it.Entity, edge.ErrNotFound)}
	}
	p, err := m.Store.Patient(ctx, patientID)
	if err != nil {
		return edge.OutboxRecords{Err: err}
	}
	rec.Patient = p
	return rec
}

// mapsEntity reports whether the mapper builds documents of rows naming
// this kind of record.
func mapsEntity(entity string) bool {
	switch entity {
	case fhir.EntityEncounter, fhir.EntityLabOrder, fhir.EntityObservation:
		return true
	}
	return false
}

// build reads the records of items with read and builds their documents.
func (m *FHIRMapper) build(ctx context.Context, items []edge.OutboxItem, read recordReader) []Mapped {
	if _, err := edge.ActorFrom(ctx); err != nil {
		ctx = edge.WithActor(ctx, edge.Actor{Kind: edge.ActorSystem, ID: "syncq"})
	}
	out := make([]Mapped, len(items))
	var at []int // rows whose records are read
	var reqs []edge.OutboxItem
	for i, it := range items {
		if !mapsEntity(it.Entity) {
			out[i].Err = fmt.Errorf("%w: outbox rows for %q are not documents", ErrUnmappable, it.Entity)
			continue
		}
		at, reqs = append(at, i), append(reqs, it)
	}
	if len(reqs) == 0 {
		return out
	}
	recs, err := read(ctx, reqs)
	if err == nil && len(recs) != len(reqs) {
		err = fmt.Errorf("read the records of %d outbox rows: got %d", len(reqs), len(recs))
	}
	if err != nil {
		for _, i := range at {
			out[i].Err = err
		}
		return out
	}
	var retract []fhir.DocumentInput
	var retractAt []int
	for k, i := range at {
		rec := recs[k]
		if rec.Err != nil {
			out[i].Err = rec.Err
			continue
		}
		in := m.input(items[i], rec)
		doc, err := fhir.BuildDocument(in)
		switch {
		case errors.Is(err, fhir.ErrEmptyDocument) && items[i].Entity == fhir.EntityEncounter && items[i].EntityVersion > 1:
			out[i].Err = errors.Join(ErrUnmappable, err) // unless an earlier version had content
			retract, retractAt = append(retract, in), append(retractAt, i)
		case err != nil:
			out[i].Err = errors.Join(ErrUnmappable, err)
		default:
			out[i] = Mapped{BundleID: doc.BundleID, Body: doc.JSON}
		}
	}
	if len(retract) > 0 {
		m.retract(ctx, retract, retractAt, out, read)
	}
	return out
}

// input is what fhir.BuildDocument builds the row's document from.
func (m *FHIRMapper) input(item edge.OutboxItem, rec edge.OutboxRecords) fhir.DocumentInput {
	in := fhir.DocumentInput{Item: item, Facility: m.Facility, Patient: rec.Patient}
	switch {
	case rec.Encounter != nil:
		in.Encounter, in.Practitioner, in.ResultedBy = rec.Encounter, rec.Practitioner, rec.ResultedBy
	case rec.Observation != nil:
		in.Observation, in.Devices = rec.Observation, rec.Devices
	}
	return in
}

// retract builds the rows of amendments that left nothing for their
// document kind: each is the content of the last earlier version that had
// some, withdrawn at the row's version (fhir.DocumentInput.Retracted). The
// earlier versions are read a version back at a time, all rows together.
// A row for which no earlier version had any (the document was never
// sent) keeps its error, unmappable, as that version's row was.
func (m *FHIRMapper) retract(ctx context.Context, ins []fhir.DocumentInput, at []int, out []Mapped, read recordReader) {
	for i := range ins {
		ins[i].Retracted = true
	}
	back := 1
	for len(ins) > 0 {
		reqs := make([]edge.OutboxItem, 0, len(ins))
		for _, in := range ins {
			it := in.Item
			it.EntityVersion -= back
			reqs = append(reqs, it)
		}
		recs, err := read(ctx, reqs)
		if err == nil && len(recs) != len(reqs) {
			err = fmt.Errorf("read the records of %d outbox rows: got %d", len(reqs), len(recs))
		}
		if err != nil {
			for _, i := range at {
				out[i].Err = err
			}
			return
		}
		var nextIns []fhir.DocumentInput
		var nextAt []int
		for k, in := range ins {
			i, rec := at[k], recs[k]
			switch {
			case errors.Is(rec.Err, edge.ErrNotFound):
				continue // no earlier version holds content: the row stays unmappable
			case rec.Err != nil:
				out[i].Err = rec.Err
				continue
			}
			in.Encounter, in.Practitioner = rec.Encounter, rec.Practitioner
			doc, err := fhir.BuildDocument(in)
			switch {
			case errors.Is(err, fhir.ErrEmptyDocument):
				if reqs[k].EntityVersion > 1 {
					nextIns, nextAt = append(nextIns, in), append(nextAt, i)
				}
			case err != nil:
				out[i].Err = errors.Join(ErrUnmappable, err)
			default:
				out[i] = Mapped{BundleID: doc.BundleID, Body: doc.JSON}
			}
		}
		ins, at = nextIns, nextAt
		back++
	}
}
