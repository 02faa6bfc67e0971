package edge_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// correction returns the patient as read, for a correction made from it.
func correction(tb testing.TB, s *edge.Store, id string) *edge.Patient {
	tb.Helper()
	p, err := s.Patient(edgetest.Clerk(), id)
	if err != nil {
		tb.Fatal(err)
	}
	return &p
}

func TestStore_UpdatePatient(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		// Ensure a correction changes the details, keeps the local ID and
		// registration time, moves the revision on, and is found by the new
		// name at once, with the index written in the same transaction.
		s := edgetest.MustOpenStore(t)
		orig := &edge.Patient{Name: "Sunita Devi", Gender: "F", BirthDate: "1990-04-12", Village: "Rampur", Phone: "9876543210"}
		if err := s.CreatePatient(edgetest.Clerk(), orig); err != nil {
			t.Fatal(err)
		}
		p := correction(t, s, orig.ID)
		p.Name, p.Village, p.Phone, p.Address = "Kamla Kumari", "सीतापुर", "+91 91234-56780", `Ward 4, "Old" <Road>`
		if err := s.UpdatePatient(edgetest.Clerk(), p); err != nil {
			t.Fatal(err)
		}
		if p.Revision <= orig.Revision {
			t.Fatalf("Revision=%d, was %d", p.Revision, orig.Revision)
		}
		got := correction(t, s, orig.ID)
		if got.Name != "Kamla Kumari" || got.Village != "सीतापुर" || got.Phone != "+919123456780" || got.Address != `Ward 4, "Old" <Road>` {
			t.Fatalf("saved %+v", got)
		}
		if got.LocalID != orig.LocalID || got.CreatedAt.UnixMilli() != orig.CreatedAt.UnixMilli() || got.Revision != p.Revision {
			t.Fatalf("saved %+v, registered %+v", got, orig)
		}
		raw := edgetest.MustRawDB(t, s.Path)
		if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM patient_search_pending`); n != 0 {
			t.Fatalf("pending index rows=%d after the commit, want 0: the index is written with the correction", n)
		}
		if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM patient_search WHERE patient_id = ? AND name_latin = 'kamla kumari'`, orig.ID); n != 1 {
			t.Fatal("search row not rewritten")
		}
		for q, want := range map[string]int{"kamla": 1, "कमला": 1, "sunita": 0} {
			ms, _, err := s.SearchPatients(edgetest.Clerk(), q, 10)
			if err != nil || len(ms) != want {
				t.Fatalf("SearchPatients(%q)=%d, %v; want %d", q, len(ms), err, want)
			}
		}
		if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log WHERE action = 'patient.update' AND actor = 'user:clerk-1'
			AND patient_id = ? AND detail = 'fields=name,phone,address,village'`, orig.ID); n != 1 {
			t.Fatal("correction not audited with the user and the fields changed")
		}
		if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log WHERE detail LIKE '%Kamla%' OR detail LIKE '%9123%' OR detail LIKE '%Sunita%'`); n != 0 {
			t.Fatal("the audit log holds patient data")
		}
		if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox`); n != 0 {
			t.Fatalf("outbox rows=%d: a correction of demographics is not a document", n)
		}
	})

	t.Run("ErrStale", func(t *testing.T) {
		// Ensure a correction made from a revision someone else has since
		// replaced saves nothing and says so.
		s := edgetest.MustOpenStore(t)
		orig := MustCreatePatient(t, s, "Sunita Devi")
		mine, theirs := correction(t, s, orig.ID), correction(t, s, orig.ID)
		theirs.Name = "Sunita Kumari"
		if err := s.UpdatePatient(edgetest.Clerk(), theirs); err != nil {
			t.Fatal(err)
		}
		mine.Name, mine.Village = "Sunita Sharma", "Sitapur"
		err := s.UpdatePatient(edgetest.Clerk(), mine)
		var ee *edge.Error
		if !errors.Is(err, edge.ErrStale) || !errors.As(err, &ee) || ee.Code != "patient_changed" {
			t.Fatalf("stale correction err=%v, want ErrStale with code patient_changed", err)
		}
		if got := correction(t, s, orig.ID); got.Name != "Sunita Kumari" || got.Village != "Rampur" || got.Revision != theirs.Revision {
			t.Fatalf("after a stale correction: %+v", got)
		}
		// Made again from the revision now saved, it goes through.
		mine.Revision = theirs.Revision
		if err := s.UpdatePatient(edgetest.Clerk(), mine); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ABHATaken", func(t *testing.T) {
		// Ensure an ABHA number or address of another patient is a field
		// error that changes nothing, and keeping one's own is fine.
		s := edgetest.MustOpenStore(t)
		other := &edge.Patient{Name: "Laxmi Bai", Gender: "F", StatedAge: 45, ABHANumber: "91-2666-2007-2857", ABHAAddress: "laxmi@abdm", ConsentLink: true}
		if err := s.CreatePatient(edgetest.Clerk(), other); err != nil {
			t.Fatal(err)
		}
		mine := &edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 30, ABHANumber: "91-1130-8436-0800", ConsentLink: true}
		if err := s.CreatePatient(edgetest.Clerk(), mine); err != nil {
			t.Fatal(err)
		}
		p := correction(t, s, mine.ID)
		p.ABHANumber, p.ABHAAddress = "91266620072857", "LAXMI@abdm"
		var fe edge.FieldErrors
		if err := s.UpdatePatient(edgetest.Clerk(), p); !errors.As(err, &fe) ||
			fe["abha_number"] != "error.abha_number_taken" || fe["abha_address"] != "error.abha_address_taken" {
			t.Fatalf("taken ABHA err=%v", err)
		}
		if got := correction(t, s, mine.ID); got.ABHANumber != "91113084360800" || got.ABHAAddress != "" || got.Revision != mine.Revision {
			t.Fatalf("after a refused correction: %+v", got)
		}
		p = correction(t, s, mine.ID)
		p.Phone = "9876543210"
		if err := s.UpdatePatient(edgetest.Clerk(), p); err != nil {
			t.Fatalf("keeping one's own ABHA number: %v", err)
		}
	})

	t.Run("ABHAChangeAndConsent", func(t *testing.T) {
		// Ensure a change of ABHA identity and every change of consent stand
		// out in the audit log, without the numbers, and consent records
		// who and when.
		s := edgetest.MustOpenStore(t)
		orig := &edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 30, ABHANumber: "91-2666-2007-2857", ConsentLink: true}
		if err := s.CreatePatient(edgetest.Clerk(), orig); err != nil {
			t.Fatal(err)
		}
		nurse := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: "nurse-2"})
		steps := []struct {
			name   string
			change func(p *edge.Patient)
			abha   string // detail of patient.abha_change, "" for none
			event  string // detail of patient.consent, "" for none
		}{
			{"NewNumberConsentKept", func(p *edge.Patient) { p.ABHANumber = "43-4221-5105-6749" }, "abha_number=changed", "consent=renewed"},
			{"AddressAdded", func(p *edge.Patient) { p.ABHAAddress = "sunita@abdm"; p.ConsentLink = false }, "abha_address=set", "consent=withdrawn"},
			{"NumberRemoved", func(p *edge.Patient) { p.ABHANumber = "" }, "abha_number=removed", ""},
			{"ConsentGiven", func(p *edge.Patient) { p.ConsentLink = true }, "", "consent=given"},
		}
		for _, st := range steps {
			p := correction(t, s, orig.ID)
			before, err := s.AuditTrail(context.Background(), orig.ID)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now().Truncate(time.Millisecond)
			st.change(p)
			if err := s.UpdatePatient(nurse, p); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			trail, err := s.AuditTrail(context.Background(), orig.ID)
			if err != nil {
				t.Fatal(err)
			}
			var abha, event string
			for _, e := range trail[len(before):] {
				switch e.Action {
				case edge.ActionPatientABHAChange:
					abha = e.Detail
				case edge.ActionPatientConsent:
					event = e.Detail
				}
				if e.Actor != "user:nurse-2" || strings.ContainsAny(e.Detail, "0123456789") || strings.Contains(e.Detail, "sunita") {
					t.Fatalf("%s: audit entry %+v: not the nurse's, or holds an identifier", st.name, e)
				}
			}
			if abha != st.abha || event != st.event {
				t.Fatalf("%s: audited abha=%q consent=%q, want %q %q", st.name, abha, event, st.abha, st.event)
			}
			got := correction(t, s, orig.ID)
			switch {
			case st.event != "" && (got.ConsentBy != "user:nurse-2" || got.ConsentAt.Before(start)):
				t.Fatalf("%s: consent recorded by %q at %v", st.name, got.ConsentBy, got.ConsentAt)
			case st.event == "" && got.ConsentAt.UnixMilli() != p.ConsentAt.UnixMilli():
				t.Fatalf("%s: consent time moved without a change of consent", st.name)
			}
			if got.ConsentLink != p.ConsentLink {
				t.Fatalf("%s: consent_link=%v", st.name, got.ConsentLink)
			}
		}
	})

	t.Run("StatedAgeKept", func(t *testing.T) {
		// Ensure saving an unchanged age told two years ago keeps it (the
		// form shows it carried forward), and a new age is dated today.
		s := edgetest.MustOpenStore(t)
		told := time.Now().AddDate(-2, 0, -3)
		orig := &edge.Patient{Name: "Ram Lal", Gender: "M", StatedAge: 60, StatedAgeAt: told}
		if err := s.CreatePatient(edgetest.Clerk(), orig); err != nil {
			t.Fatal(err)
		}
		p := correction(t, s, orig.ID)
		if got := p.StatedAgeNow(time.Now()); got != 62 {
			t.Fatalf("StatedAgeNow=%d, want 62", got)
		}
		p.StatedAge, p.Phone = 62, "9876543210"
		if err := s.UpdatePatient(edgetest.Clerk(), p); err != nil {
			t.Fatal(err)
		}
		if got := correction(t, s, orig.ID); got.StatedAge != 60 || got.StatedAgeAt.UnixMilli() != told.UnixMilli() {
			t.Fatalf("unchanged age saved as %d at %v, want 60 at %v", got.StatedAge, got.StatedAgeAt, told)
		}
		p = correction(t, s, orig.ID)
		p.StatedAge = 65
		if err := s.UpdatePatient(edgetest.Clerk(), p); err != nil {
			t.Fatal(err)
		}
		if got := correction(t, s, orig.ID); got.StatedAge != 65 || time.Since(got.StatedAgeAt) > time.Minute || got.BirthYear() != time.Now().Year()-65 {
			t.Fatalf("new age saved as %d at %v", got.StatedAge, got.StatedAgeAt)
		}
		// A date of birth replaces the stated age.
		p = correction(t, s, orig.ID)
		p.BirthDate = "1961-03-02"
		if err := s.UpdatePatient(edgetest.Clerk(), p); err != nil {
			t.Fatal(err)
		}
		raw := edgetest.MustRawDB(t, s.Path)
		if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM patients WHERE id = ? AND birth_date = '1961-03-02'
			AND stated_age IS NULL AND stated_age_at IS NULL`, orig.ID); n != 1 {
			t.Fatal("the stated age was kept beside the date of birth")
		}
		if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM patient_search WHERE patient_id = ? AND birth_year = 1961`, orig.ID); n != 1 {
			t.Fatal("birth year in the search index not rewritten")
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		// Ensure hostile or invalid corrections get field errors and change
		// nothing, and an unknown patient, a missing actor and a correction
		// that changes nothing are handled.
		s := edgetest.MustOpenStore(t)
		orig := MustCreatePatient(t, s, "Sunita Devi")
		for _, tc := range []struct {
			name   string
			change func(p *edge.Patient)
			field  string
		}{
			{"Script", func(p *edge.Patient) { p.Name = "<script>alert(1)</script>" }, "name"},
			{"NUL", func(p *edge.Patient) { p.Village = "Ram\x00pur" }, "village"},
			{"InvalidUTF8", func(p *edge.Patient) { p.Name = "Sun\xffita" }, "name"},
			{"Huge", func(p *edge.Patient) { p.Address = strings.Repeat("क", 300) }, "address"},
			{"ABHAChecksum", func(p *edge.Patient) { p.ABHANumber = "91-2666-2007-2858" }, "abha_number"},
			{"ABHAAddress", func(p *edge.Patient) { p.ABHAAddress = "'; DROP TABLE patients; --@abdm" }, "abha_address"},
			{"Phone", func(p *edge.Patient) { p.Phone = "12345" }, "phone"},
			{"NoAge", func(p *edge.Patient) { p.BirthDate, p.StatedAge, p.StatedAgeAt = "", 0, time.Time{} }, "birth_date"},
			{"Gender", func(p *edge.Patient) { p.Gender = "X" }, "gender"},
		} {
			p := correction(t, s, orig.ID)
			tc.change(p)
			var fe edge.FieldErrors
			if err := s.UpdatePatient(edgetest.Clerk(), p); !errors.As(err, &fe) || fe[tc.field] == "" {
				t.Errorf("%s: err=%v, want an error on %s", tc.name, err, tc.field)
			}
		}
		if got := correction(t, s, orig.ID); got.Revision != orig.Revision || got.Name != "Sunita Devi" {
			t.Fatalf("a refused correction changed the patient: %+v", got)
		}
		p := correction(t, s, orig.ID)
		p.ID = edge.NewID()
		if err := s.UpdatePatient(edgetest.Clerk(), p); !errors.Is(err, edge.ErrNotFound) {
			t.Fatalf("unknown patient err=%v", err)
		}
		p = correction(t, s, orig.ID)
		p.Name = "Sunita Kumari"
		if err := s.UpdatePatient(context.Background(), p); !errors.Is(err, edge.ErrNoActor) {
			t.Fatalf("no actor err=%v", err)
		}
		p = correction(t, s, orig.ID)
		if err := s.UpdatePatient(edgetest.Clerk(), p); err != nil || p.Revision != orig.Revision {
			t.Fatalf("unchanged correction: %v, revision %d, want %d", err, p.Revision, orig.Revision)
		}
		raw := edgetest.MustRawDB(t, s.Path)
		if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log WHERE action = 'patient.update'`); n != 0 {
			t.Fatalf("patient.update audited %d times for corrections that saved nothing", n)
		}
	})
}
