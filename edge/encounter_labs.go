package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/healthpost/healthpost/edge/catalogue"
)

// Lab orders, referrals and vaccines are parts of an encounter: they are
// fields of Encounter, saved with it in one transaction and read with it.
// A lab result may also come later, for an order of a final encounter: that
// is a clinical write of its own (RecordLabResult), audited, with the
// DiagnosticReportRecord outbox row in its transaction.

// Lab order statuses.
const (
	LabOrdered   = "ordered"
	LabResulted  = "resulted"
	LabCancelled = "cancelled"
)

// Interpretations of a result: the HL7 v3 ObservationInterpretation codes
// FHIR uses, so they travel as they are.
const (
	InterpNormal       = "N"
	InterpAbnormal     = "A"
	InterpLow          = "L"
	InterpHigh         = "H"
	InterpCriticalLow  = "LL"
	InterpCriticalHigh = "HH"
)

// Interpretations lists them in the order a form offers them.
var Interpretations = []string{InterpNormal, InterpAbnormal, InterpLow, InterpHigh, InterpCriticalLow, InterpCriticalHigh}

// Referral urgencies.
const (
	UrgencyRoutine   = "routine"
	UrgencyUrgent    = "urgent"
	UrgencyEmergency = "emergency"
)

// Urgencies lists them in the order a form offers them.
var Urgencies = []string{UrgencyRoutine, UrgencyUrgent, UrgencyEmergency}

// Audit actions of lab orders.
const (
	ActionLabResult = "lab.result"
	ActionLabCancel = "lab.cancel"
	ActionLabRead   = "lab.read"
)

// EntityLabOrder is the outbox entity of a lab result's
// DiagnosticReportRecord: one document per resulted order.
const EntityLabOrder = "lab_order"

// LabOrder is one test ordered in an encounter, with its result once there
// is one.
type LabOrder struct {
	ID        string     `json:"id"`
	Test      string     `json:"test"`  // catalogue.LabTest.Code
	LOINC     string     `json:"loinc"` // the test's, kept with the order
	Status    string     `json:"status"`
	OrderedAt time.Time  `json:"ordered_at"`
	Result    *LabResult `json:"result,omitempty"`
	// CancelledAt is when a pending order was cancelled.
	CancelledAt time.Time `json:"cancelled_at,omitzero"`

	// Filled when an order is read on its own (Store.LabOrder,
	// PatientRecord.PendingLabOrders).
	EncounterID string `json:"encounter_id,omitempty"`
	PatientID   string `json:"patient_id,omitempty"`
}

// LabResult is what the lab found: a number in the test's unit or one of
// its answers, and how the person resulting it read it.
type LabResult struct {
	Value          float64   `json:"value"`
	ValueText      string    `json:"value_text,omitempty"` // as typed
	Unit           string    `json:"unit,omitempty"`       // UCUM, numeric tests
	Answer         string    `json:"answer,omitempty"`     // catalogue answer code, coded tests
	Interpretation string    `json:"interpretation,omitempty"`
	ResultedAt     time.Time `json:"resulted_at"`
	ResultedBy     string    `json:"resulted_by,omitempty"` // user id
	// Version is the DiagnosticReportRecord version the result was sent as.
	Version int `json:"version"`
}

// Referral sends the patient on to another facility.
type Referral struct {
	ID       string `json:"id"`
	Facility string `json:"facility"` // a name from the list or typed
	Reason   string `json:"reason,omitempty"`
	Urgency  string `json:"urgency"`
}

// Immunization is one vaccine (or Vitamin A) given.
type Immunization struct {
	ID      string `json:"id"`
	Vaccine string `json:"vaccine"` // catalogue.Vaccine.Code
	// Dose is the dose number where the schedule numbers it (0 is a birth
	// dose), nil when not known.
	Dose    *int   `json:"dose,omitempty"`
	Booster bool   `json:"booster,omitempty"`
	GivenOn string `json:"given_on"` // YYYY-MM-DD, India time
}

// india is the zone dates of care are written in.
var india = time.FixedZone("IST", 5*3600+30*60)

// cleanText reports whether s is valid UTF-8 of at most max bytes with no
// control characters other than tab and newlines.
func cleanText(s string, max int) bool {
	if !utf8.ValidString(s) || len(s) > max {
		return false
	}
	for _, r := range s {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
			return false
		}
	}
	return true
}

// ValidateResult checks a result against its test: a finite number in the
// test's unit and plausible range, or one of its answers; a known
// interpretation. Keys of the field errors are value, answer and
// interpretation.
func ValidateResult(t catalogue.LabTest, r *LabResult) FieldErrors {
	fe := FieldErrors{}
	if t.Numeric() {
		switch {
		case r.Unit != t.Unit:
			fe["value"] = "error.unit_invalid"
		case math.IsNaN(r.Value) || math.IsInf(r.Value, 0):
			fe["value"] = "error.number_invalid"
		case r.Value < t.Min || r.Value > t.Max:
			fe["value"] = "error.vital_implausible"
		}
		if r.Answer != "" {
			fe["answer"] = "error.answer_invalid"
		}
		if !cleanText(r.ValueText, 50) {
			fe["value"] = "error.text_invalid"
		}
	} else {
		if _, ok := t.Answer(r.Answer); !ok {
			fe["answer"] = "error.answer_invalid"
		}
		if r.Unit != "" || r.Value != 0 || r.ValueText != "" {
			fe["value"] = "error.value_invalid"
		}
	}
	if r.Interpretation != "" && !contains(Interpretations, r.Interpretation) {
		fe["interpretation"] = "error.interpretation_invalid"
	}
	return fe
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// validateLabParts adds the field errors of an encounter's lab orders,
// referral and vaccines to fe.
func (e *Encounter) validateLabParts(fe FieldErrors) {
	for i := range e.LabOrders {
		o := &e.LabOrders[i]
		key := fmt.Sprintf("lab_orders.%d.", i)
		t, ok := catalogue.Lab(o.Test)
		if !ok {
			fe[key+"test"] = "error.lab_test_unknown"
			continue
		}
		if o.LOINC == "" {
			o.LOINC = t.LOINC
		}
		if o.LOINC != t.LOINC {
			fe[key+"test"] = "error.lab_test_unknown"
		}
		switch o.Status {
		case LabOrdered, LabCancelled:
			if o.Result != nil {
				fe[key+"status"] = "error.lab_status_invalid"
			}
		case LabResulted:
			if o.Result == nil {
				fe[key+"status"] = "error.lab_status_invalid"
				continue
			}
			for k, v := range ValidateResult(t, o.Result) {
				fe[key+k] = v
			}
		default:
			fe[key+"status"] = "error.lab_status_invalid"
		}
	}
	if r := e.Referral; r != nil {
		r.Facility, r.Reason = strings.TrimSpace(r.Facility), strings.TrimSpace(r.Reason)
		switch {
		case r.Facility == "":
			fe["referral.facility"] = "error.required"
		case !cleanText(r.Facility, 200):
			fe["referral.facility"] = "error.text_invalid"
		}
		if !cleanText(r.Reason, 2000) {
			fe["referral.reason"] = "error.text_invalid"
		}
		if !contains(Urgencies, r.Urgency) {
			fe["referral.urgency"] = "error.urgency_invalid"
		}
	}
	for i, im := range e.Immunizations {
		key := fmt.Sprintf("immunizations.%d.", i)
		if _, ok := catalogue.VaccineByCode(im.Vaccine); !ok {
			fe[key+"vaccine"] = "error.vaccine_unknown"
		}
		if im.Dose != nil && (*im.Dose < 0 || *im.Dose > 20) {
			fe[key+"dose"] = "error.dose_invalid"
		}
		if im.GivenOn != "" {
			if _, err := time.Parse(time.DateOnly, im.GivenOn); err != nil {
				fe[key+"given_on"] = "error.date_invalid"
			}
		}
	}
}

// insertLabParts saves an encounter's lab orders, referral and vaccines.
// Orders get defaultAt; a result entered with its order is resulted by the
// transaction's actor, now.
func insertLabParts(tx *Tx, e *Encounter, defaultAt time.Time) error {
	for i := range e.LabOrders {
		o := &e.LabOrders[i]
		o.ID, o.OrderedAt = NewID(), defaultAt
		if err := insertLabOrder(tx, e, o); err != nil {
			return fmt.Errorf("save lab order %d: %w", i, err)
		}
	}
	return insertReferralAndVaccines(tx, e)
}

// amendLabParts replaces, in an amendment, the lab orders, referral and
// vaccines of encounter old (as stored) with e's. The referral and the
// vaccines are replaced as observations and diagnoses are. Lab orders are
// matched to old's by ID, because a lab order is also a document of its
// own upstream (a resulted order's DiagnosticReportRecord, keyed by the
// order's ID, based on the ServiceRequest the visit's OPConsultRecord
// names by the same ID):
//
//   - an order with a result, or cancelled, stays as it is, whether e lists
//     it or not: the result is the lab's record and went upstream as its
//     own report, which an amendment of the visit neither changes nor
//     withdraws. e listing it with another test, status or result is the
//     field error error.lab_order_fixed on lab_orders.N.status;
//   - a pending order e lists with the same test keeps its ID and order
//     time, and takes e's status: still pending, resulted now (its report
//     is then queued by the caller) or cancelled now;
//   - a pending order e no longer lists (or lists with another test) is
//     removed, as never ordered;
//   - every other order of e is a new order at defaultAt.
//
// On return e.LabOrders holds what e listed, as stored; orders kept
// without being listed are read back by the caller.
func amendLabParts(tx *Tx, old, e *Encounter, defaultAt time.Time) error {
	prev := make(map[string]LabOrder, len(old.LabOrders))
	for _, o := range old.LabOrders {
		prev[o.ID] = o
	}
	kept := map[string]bool{}
	fe := FieldErrors{}
	var fresh []*LabOrder
	for i := range e.LabOrders {
		o := &e.LabOrders[i]
		p, ok := prev[o.ID]
		switch {
		case !ok || o.ID == "" || kept[o.ID]:
			fresh = append(fresh, o)
		case p.Status != LabOrdered:
			if !sameLabOrder(p, *o) {
				fe[fmt.Sprintf("lab_orders.%d.status", i)] = "error.lab_order_fixed"
				continue
			}
			kept[o.ID] = true
			*o = p
		case p.Test != o.Test:
			fresh = append(fresh, o)
		default:
			kept[o.ID] = true
			o.OrderedAt = p.OrderedAt
			var err error
			switch o.Status {
			case LabResulted:
				err = writeLabResult(tx, o.ID, o.Result)
			case LabCancelled:
				err = writeLabCancel(tx, o.ID)
				o.CancelledAt = time.UnixMilli(tx.Now())
			}
			if err != nil {
				return err
			}
		}
	}
	if len(fe) > 0 {
		return fe
	}
	for _, p := range old.LabOrders {
		if kept[p.ID] || p.Status != LabOrdered {
			continue // a result or a cancellation stays, listed or not
		}
		if _, err := tx.exec(`DELETE FROM lab_orders WHERE id = ? AND status = 'ordered'`, p.ID); err != nil {
			return fmt.Errorf("remove lab order: %w", err)
		}
	}
	for i, o := range fresh {
		o.ID, o.OrderedAt = NewID(), defaultAt
		if err := insertLabOrder(tx, e, o); err != nil {
			return fmt.Errorf("save lab order %d: %w", i, err)
		}
	}
	for _, q := range []string{
		`DELETE FROM referrals WHERE encounter_id = ?`,
		`DELETE FROM immunizations WHERE encounter_id = ?`,
	} {
		if _, err := tx.exec(q, e.ID); err != nil {
			return fmt.Errorf("replace encounter parts: %w", err)
		}
	}
	return insertReferralAndVaccines(tx, e)
}

// sameLabOrder reports whether o, as an amendment lists it, is stored order
// p unchanged: the same test and status and, for a result, the same value,
// unit, answer and interpretation (the text as typed may differ).
func sameLabOrder(p, o LabOrder) bool {
	if p.Test != o.Test || p.Status != o.Status || (p.Result == nil) != (o.Result == nil) {
		return false
	}
	if p.Result == nil {
		return true
	}
	a, b := p.Result, o.Result
	return a.Value == b.Value && a.Unit == b.Unit && a.Answer == b.Answer && a.Interpretation == b.Interpretation
}

// insertReferralAndVaccines saves an encounter's referral and vaccines. A
// vaccine without a date was given on the day of the visit.
func insertReferralAndVaccines(tx *Tx, e *Encounter) error {
	if r := e.Referral; r != nil {
		r.ID = NewID()
		if _, err := tx.exec(`INSERT INTO referrals (id, encounter_id, facility, reason, urgency, created_at, node_seq)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, r.ID, e.ID, r.Facility, r.Reason, r.Urgency, tx.Now(), tx.NextSeq()); err != nil {
			return fmt.Errorf("save referral: %w", err)
		}
	}
	for i := range e.Immunizations {
		im := &e.Immunizations[i]
		im.ID = NewID()
		if im.GivenOn == "" {
			im.GivenOn = e.StartedAt.In(india).Format(time.DateOnly)
		}
		var dose any
		if im.Dose != nil {
			dose = *im.Dose
		}
		if _, err := tx.exec(`INSERT INTO immunizations (id, encounter_id, patient_id, vaccine, dose, booster, given_on,
			created_at, node_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, im.ID, e.ID, e.PatientID, im.Vaccine, dose,
			boolInt(im.Booster), im.GivenOn, tx.Now(), tx.NextSeq()); err != nil {
			return fmt.Errorf("save immunization %d: %w", i, err)
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func insertLabOrder(tx *Tx, e *Encounter, o *LabOrder) error {
	var value, resultedAt, resultedBy any
	var valueText, unit, answer, interp string
	version := 0
	if r := o.Result; r != nil {
		r.ResultedAt, r.Version = tx.now, 1
		if tx.actor.Kind == ActorUser {
			r.ResultedBy = tx.actor.ID
		}
		if r.Unit != "" {
			value = r.Value
		}
		valueText, unit, answer, interp = r.ValueText, r.Unit, r.Answer, r.Interpretation
		resultedAt, resultedBy, version = tx.Now(), nullString(r.ResultedBy), 1
	}
	_, err := tx.exec(`INSERT INTO lab_orders (id, encounter_id, patient_id, test, loinc, status, ordered_at,
		value, value_text, unit, answer, interpretation, resulted_at, resulted_by, result_version,
		created_at, node_seq, clock_suspect) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		o.ID, e.ID, e.PatientID, o.Test, o.LOINC, o.Status, o.OrderedAt.UnixMilli(),
		value, valueText, unit, answer, interp, resultedAt, resultedBy, version,
		tx.Now(), tx.NextSeq(), tx.Suspect())
	return err
}

// deleteLabParts removes a draft's lab orders, referral and vaccines
// before they are saved again.
func deleteLabParts(tx *Tx, encounterID string) error {
	for _, q := range []string{
		`DELETE FROM lab_orders WHERE encounter_id = ?`,
		`DELETE FROM referrals WHERE encounter_id = ?`,
		`DELETE FROM immunizations WHERE encounter_id = ?`,
	} {
		if _, err := tx.exec(q, encounterID); err != nil {
			return fmt.Errorf("replace encounter parts: %w", err)
		}
	}
	return nil
}

const labOrderColumns = `id, encounter_id, patient_id, test, loinc, status, ordered_at, coalesce(value, 0),
	value_text, unit, answer, interpretation, resulted_at, coalesce(resulted_by, ''), result_version, cancelled_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanLabOrder(row rowScanner) (LabOrder, error) {
	var o LabOrder
	var ordered int64
	var resulted, cancelled sql.NullInt64
	var r LabResult
	err := row.Scan(&o.ID, &o.EncounterID, &o.PatientID, &o.Test, &o.LOINC, &o.Status, &ordered, &r.Value,
		&r.ValueText, &r.Unit, &r.Answer, &r.Interpretation, &resulted, &r.ResultedBy, &r.Version, &cancelled)
	if err != nil {
		return o, err
	}
	o.OrderedAt = time.UnixMilli(ordered)
	if cancelled.Valid {
		o.CancelledAt = time.UnixMilli(cancelled.Int64)
	}
	if o.Status == LabResulted && resulted.Valid {
		r.ResultedAt = time.UnixMilli(resulted.Int64)
		o.Result = &r
	}
	return o, nil
}

// readLabParts reads an encounter's lab orders, referral and vaccines.
func readLabParts(ctx context.Context, q querier, e *Encounter) error {
	rows, err := q.QueryContext(ctx, `SELECT `+labOrderColumns+` FROM lab_orders WHERE encounter_id = ? ORDER BY node_seq`, e.ID)
	if err != nil {
		return fmt.Errorf("read lab orders: %w", err)
	}
	for rows.Next() {
		o, err := scanLabOrder(rows)
		if err != nil {
			rows.Close()
			return err
		}
		o.EncounterID, o.PatientID = "", "" // the encounter says them
		e.LabOrders = append(e.LabOrders, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var r Referral
	err = q.QueryRowContext(ctx, `SELECT id, facility, reason, urgency FROM referrals WHERE encounter_id = ?`, e.ID).
		Scan(&r.ID, &r.Facility, &r.Reason, &r.Urgency)
	switch {
	case err == nil:
		e.Referral = &r
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("read referral: %w", err)
	}
	rows, err = q.QueryContext(ctx, `SELECT id, vaccine, dose, booster, given_on FROM immunizations
		WHERE encounter_id = ? ORDER BY node_seq`, e.ID)
	if err != nil {
		return fmt.Errorf("read immunizations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var im Immunization
		var dose sql.NullInt64
		if err := rows.Scan(&im.ID, &im.Vaccine, &dose, &im.Booster, &im.GivenOn); err != nil {
			return err
		}
		if dose.Valid {
			d := int(dose.Int64)
			im.Dose = &d
		}
		e.Immunizations = append(e.Immunizations, im)
	}
	return rows.Err()
}

// appendLabResultOutbox adds the DiagnosticReportRecord row of a resulted
// order, once: a row already written for this result version (by the visit
// or by a later save of the same encounter) is not written again.
func appendLabResultOutbox(tx *Tx, patientID string, o *LabOrder) error {
	if o.Status != LabResulted || o.Result == nil {
		return nil
	}
	key := fmt.Sprintf("%s/%s/%s/v%d", DocDiagnosticReport, EntityLabOrder, o.ID, o.Result.Version)
	var n int
	if err := tx.queryRow(`SELECT count(*) FROM outbox WHERE key = ?`, key).Scan(&n); err != nil {
		return fmt.Errorf("read outbox: %w", err)
	}
	if n > 0 {
		return nil
	}
	return tx.appendOutbox(DocDiagnosticReport, LaneClinical, patientID, EntityLabOrder, o.ID, o.Result.Version)
}

// readLabOrder reads one order with its encounter's status.
func readLabOrder(ctx context.Context, q querier, id string) (LabOrder, string, error) {
	o, err := scanLabOrder(q.QueryRowContext(ctx, `SELECT `+labOrderColumns+` FROM lab_orders WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return o, "", fmt.Errorf("lab order %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return o, "", fmt.Errorf("read lab order: %w", err)
	}
	var status string
	if err := q.QueryRowContext(ctx, `SELECT status FROM encounters WHERE id = ?`, o.EncounterID).Scan(&status); err != nil {
		return o, "", fmt.Errorf("read lab order's encounter: %w", err)
	}
	return o, status, nil
}

// LabOrder reads one lab order with its result, and audits the read.
func (s *Store) LabOrder(ctx context.Context, id string) (LabOrder, error) {
	if _, err := ActorFrom(ctx); err != nil {
		return LabOrder{}, err
	}
	var o LabOrder
	if err := s.snapshot(ctx, func(tx *sql.Tx) (err error) {
		o, _, err = readLabOrder(ctx, tx, id)
		return err
	}); err != nil {
		return LabOrder{}, err
	}
	if err := s.auditRead(ctx, auditItem{ActionLabRead, EntityLabOrder, id, o.PatientID, ""}); err != nil {
		return LabOrder{}, err
	}
	return o, nil
}

// Errors of acting on a lab order that is not pending.
var (
	errLabNotPending = &Error{Code: "lab_not_pending", Message: "this test already has a result or was cancelled",
		Hint: "open the patient's page to see the result"}
	errLabDraft = &Error{Code: "lab_draft", Message: "this test was ordered in a visit that is still a draft",
		Hint: "enter the result on the visit form"}
)

// RecordLabResult records the result of a pending order of a final
// encounter, entered after the visit. It is a clinical write of its own:
// audited, with the order's DiagnosticReportRecord outbox row in the same
// transaction. A result that does not fit the test is FieldErrors (value,
// answer, interpretation) and changes nothing.
func (s *Store) RecordLabResult(ctx context.Context, orderID string, r *LabResult) error {
	if err := s.refuseIfCritical(); err != nil {
		return err
	}
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		o, encStatus, err := readLabOrder(ctx, tx, orderID)
		if err != nil {
			return err
		}
		switch {
		case encStatus == EncounterDraft:
			return errLabDraft
		case o.Status != LabOrdered:
			return errLabNotPending
		}
		t, ok := catalogue.Lab(o.Test)
		if !ok {
			return fmt.Errorf("lab order %s: test not in the catalogue", orderID)
		}
		if fe := ValidateResult(t, r); len(fe) > 0 {
			return fe
		}
		if err := writeLabResult(tx, orderID, r); err != nil {
			return err
		}
		if err := tx.audit(ActionLabResult, EntityLabOrder, orderID, o.PatientID, "test="+o.Test); err != nil {
			return err
		}
		o.Status, o.Result = LabResulted, r
		return appendLabResultOutbox(tx, o.PatientID, &o)
	})
}

// CancelLabOrder cancels a pending order of a final encounter (the sample
// was never given, the test is no longer needed), audited. The order was
// already sent upstream in the visit's OPConsultRecord; the cancellation
// is recorded on the node and shown, and goes upstream with the
// encounter's next amendment.
func (s *Store) CancelLabOrder(ctx context.Context, orderID string) error {
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		o, encStatus, err := readLabOrder(ctx, tx, orderID)
		if err != nil {
			return err
		}
		switch {
		case encStatus == EncounterDraft:
			return errLabDraft
		case o.Status != LabOrdered:
			return errLabNotPending
		}
		if err := writeLabCancel(tx, orderID); err != nil {
			return err
		}
		return tx.audit(ActionLabCancel, EntityLabOrder, orderID, o.PatientID, "test="+o.Test)
	})
}

// writeLabResult puts result r on pending order id, resulted now by the
// transaction's actor as version 1 of its report; r is checked by the
// caller, and gets the time, version and user. An order no longer pending
// is errLabNotPending.
func writeLabResult(tx *Tx, id string, r *LabResult) error {
	r.ResultedAt, r.Version, r.ResultedBy = tx.now, 1, ""
	if tx.actor.Kind == ActorUser {
		r.ResultedBy = tx.actor.ID
	}
	var value any
	if r.Unit != "" { // a numeric test's; a coded one's has no number
		value = r.Value
	}
	res, err := tx.exec(`UPDATE lab_orders SET status = 'resulted', value = ?, value_text = ?, unit = ?, answer = ?,
		interpretation = ?, resulted_at = ?, resulted_by = ?, result_version = 1 WHERE id = ? AND status = 'ordered'`,
		value, r.ValueText, r.Unit, r.Answer, r.Interpretation, tx.Now(), nullString(r.ResultedBy), id)
	if err != nil {
		return fmt.Errorf("record lab result: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return errLabNotPending
	}
	return nil
}

// writeLabCancel cancels pending order id now, by the transaction's actor.
// An order no longer pending is errLabNotPending.
func writeLabCancel(tx *Tx, id string) error {
	res, err := tx.exec(`UPDATE lab_orders SET status = 'cancelled', cancelled_at = ?, cancelled_by = ?
		WHERE id = ? AND status = 'ordered'`, tx.Now(), tx.actor.String(), id)
	if err != nil {
		return fmt.Errorf("cancel lab order: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return errLabNotPending
	}
	return nil
}

// pendingLabOrders lists a patient's orders still waiting for a result in
// final encounters, oldest first.
func (s *Store) pendingLabOrders(ctx context.Context, patientID string) ([]LabOrder, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT `+labOrderColumns+` FROM lab_orders
		WHERE patient_id = ? AND status = 'ordered'
		  AND encounter_id IN (SELECT id FROM encounters WHERE patient_id = ? AND status IN ('final', 'amended'))
		ORDER BY ordered_at, node_seq`, patientID, patientID)
	if err != nil {
		return nil, fmt.Errorf("read pending lab orders: %w", err)
	}
	defer rows.Close()
	var out []LabOrder
	for rows.Next() {
		o, err := scanLabOrder(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// legacyVaccineSystem marks the vaccines an immunization visit kept as
// diagnoses before the labs migration (0009_labs.sql), which moved them
// into immunization rows. Snapshots of versions made before it
// (encounter_versions, never changed) still hold them that way.
const legacyVaccineSystem = "urn:healthpost:uip-vaccine"

// legacyVaccine is what the labs migration made of each old vaccine code:
// the catalogue vaccine, its dose number (-1: none) and booster.
type legacyVaccine struct {
	vaccine string
	dose    int
	booster bool
}

// legacyVaccines is the migration's uip_codes table, in Go.
var legacyVaccines = map[string]legacyVaccine{
	"BCG": {"BCG", -1, false}, "OPV-0": {"OPV", 0, false}, "HEPB-0": {"HEPB", 0, false},
	"OPV-1": {"OPV", 1, false}, "PENTA-1": {"PENTA", 1, false}, "ROTA-1": {"ROTA", 1, false}, "FIPV-1": {"FIPV", 1, false}, "PCV-1": {"PCV", 1, false},
	"OPV-2": {"OPV", 2, false}, "PENTA-2": {"PENTA", 2, false}, "ROTA-2": {"ROTA", 2, false},
	"OPV-3": {"OPV", 3, false}, "PENTA-3": {"PENTA", 3, false}, "ROTA-3": {"ROTA", 3, false}, "FIPV-2": {"FIPV", 2, false}, "PCV-2": {"PCV", 2, false},
	"MR-1": {"MR", 1, false}, "JE-1": {"JE", 1, false}, "PCV-B": {"PCV", -1, true}, "VITA-1": {"VITA", 1, false},
	"MR-2": {"MR", 2, false}, "JE-2": {"JE", 2, false}, "DPT-B1": {"DPT", 1, true}, "OPV-B": {"OPV", -1, true},
	"DPT-B2": {"DPT", 2, true}, "TD-10": {"TD", -1, true}, "TD-16": {"TD", -1, true},
	"TD-1": {"TD", 1, false}, "TD-2": {"TD", 2, false}, "TD-B": {"TD", -1, true},
}

// moveLegacyVaccines reads a snapshot made before the labs migration as
// the migration read that version's rows: each vaccine diagnosis becomes
// an immunization with the diagnosis's ID, given on the visit's day in
// India, so that the old version reads (and maps upstream) as the current
// row of the same visit does.
func (e *Encounter) moveLegacyVaccines() {
	var dx []Diagnosis
	for _, d := range e.Diagnoses {
		if d.System != legacyVaccineSystem {
			dx = append(dx, d)
			continue
		}
		im := Immunization{ID: d.ID, Vaccine: d.Code, GivenOn: e.StartedAt.In(india).Format(time.DateOnly)}
		if v, ok := legacyVaccines[d.Code]; ok {
			im.Vaccine, im.Booster = v.vaccine, v.booster
			if v.dose >= 0 {
				n := v.dose
				im.Dose = &n
			}
		}
		e.Immunizations = append(e.Immunizations, im)
	}
	if len(dx) != len(e.Diagnoses) {
		e.Diagnoses = dx
	}
}
