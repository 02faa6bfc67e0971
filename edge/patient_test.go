package edge_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

func TestNormalizeABHANumber(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		// Real sandbox and documentation numbers (reference/abdm.md): all pass Luhn.
		{"91-2666-2007-2857", "91266620072857", ""},
		{"91-1130-8436-0800", "91113084360800", ""},
		{"43-4221-5105-6749", "43422151056749", ""},
		{"22 7225 4829 5255", "22722548295255", ""},
		// A typo in one digit, and dummies, fail the check digit.
		{"91-2666-2007-2858", "", "error.abha_checksum"},
		{"12-3456-7890-1234", "", "error.abha_checksum"},
		{"91-7561-4088-0001", "", "error.abha_checksum"},
		{"91-2666-2007-285", "", "error.abha_length"},
		{"9126662007285７", "", "error.abha_length"}, // a full-width digit
		{"sunita@abdm", "", "error.abha_length"},
	}
	for _, tc := range cases {
		got, err := edge.NormalizeABHANumber(tc.in)
		switch {
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("NormalizeABHANumber(%q) err=%v, want %s", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("NormalizeABHANumber(%q)=%q, %v, want %q", tc.in, got, err, tc.want)
		}
	}
	if g, w := edge.FormatABHANumber("91266620072857"), "91-2666-2007-2857"; g != w {
		t.Fatalf("FormatABHANumber=%q, want %q", g, w)
	}
}

func TestPatient_Validate(t *testing.T) {
	cases := []struct {
		name  string
		p     edge.Patient
		field string // "" means valid
	}{
		{"OK", edge.Patient{Name: "सुनीता देवी", Gender: "f", BirthDate: "1990-04-12", Phone: "98765 43210"}, ""},
		{"StatedAgeOnly", edge.Patient{Name: "Ram Lal", Gender: "M", StatedAge: 60}, ""},
		{"NoName", edge.Patient{Name: "  ", Gender: "F", StatedAge: 30}, "name"},
		{"ScriptInName", edge.Patient{Name: "<script>alert(1)</script>", Gender: "F", StatedAge: 30}, "name"},
		{"InvalidUTF8", edge.Patient{Name: "Sun\xffita", Gender: "F", StatedAge: 30}, "name"},
		{"NoAge", edge.Patient{Name: "Ram", Gender: "M"}, "birth_date"},
		{"FutureBirth", edge.Patient{Name: "Ram", Gender: "M", BirthDate: "2999-01-01"}, "birth_date"},
		{"BadGender", edge.Patient{Name: "Ram", Gender: "X", StatedAge: 3}, "gender"},
		{"BadPhone", edge.Patient{Name: "Ram", Gender: "M", StatedAge: 3, Phone: "12345"}, "phone"},
		{"BadABHA", edge.Patient{Name: "Ram", Gender: "M", StatedAge: 3, ABHANumber: "12-3456-7890-1234"}, "abha_number"},
		{"BadABHAAddress", edge.Patient{Name: "Ram", Gender: "M", StatedAge: 3, ABHAAddress: "ram lal@abdm"}, "abha_address"},
		{"HugeAddress", edge.Patient{Name: "Ram", Gender: "M", StatedAge: 3, Address: strings.Repeat("x", 600)}, "address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate=%v, want ok", err)
				}
				return
			}
			var fe edge.FieldErrors
			if !errors.As(err, &fe) || fe[tc.field] == "" {
				t.Fatalf("Validate=%v, want an error on %s", err, tc.field)
			}
		})
	}
}

func TestStore_CreatePatient(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	p := &edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 34, ABHANumber: "91-2666-2007-2857",
		ABHAAddress: "Sunita.Devi@abdm", Phone: "+919876543210", ConsentLink: true}
	if err := s.CreatePatient(edgetest.Clerk(), p); err != nil {
		t.Fatal(err)
	}
	got, err := s.Patient(edgetest.Clerk(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Ensure identifiers are normalized and consent records who and when.
	if got.ABHANumber != "91266620072857" || got.ABHAAddress != "sunita.devi@abdm" || got.LocalID != "P-000001" {
		t.Fatalf("got %+v", got)
	}
	if !got.ConsentLink || got.ConsentBy != "user:clerk-1" || got.ConsentAt.IsZero() {
		t.Fatalf("consent not recorded: %+v", got)
	}
	if got.StatedAge != 34 || got.StatedAgeAt.IsZero() {
		t.Fatalf("stated age not recorded: %+v", got)
	}
	// Ensure the same ABHA cannot be registered twice, with a field error rather than a crash.
	dup := &edge.Patient{Name: "Someone Else", Gender: "F", StatedAge: 20, ABHANumber: "91266620072857"}
	var fe edge.FieldErrors
	if err := s.CreatePatient(edgetest.Clerk(), dup); !errors.As(err, &fe) || fe["abha_number"] != "error.abha_number_taken" {
		t.Fatalf("duplicate ABHA err=%v", err)
	}
	if _, err := s.Patient(edgetest.Clerk(), edge.NewID()); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("unknown patient err=%v, want ErrNotFound", err)
	}
}

func TestStore_Users(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorSystem, ID: "cli"})
	pw, err := s.EnsureFirstAdmin(ctx)
	if err != nil || len(pw) < 16 {
		t.Fatalf("EnsureFirstAdmin=%q %v", pw, err)
	}
	// Ensure the first admin is created once only.
	if again, _ := s.EnsureFirstAdmin(ctx); again != "" {
		t.Fatal("a second first admin was created")
	}
	if _, err := s.Authenticate(ctx, "admin", pw); err != nil {
		t.Fatalf("admin cannot log in with the printed password: %v", err)
	}
	u := &edge.User{Username: "dr.meena", Role: edge.RoleDoctor, HPRID: "71-2665-5777-1234"}
	if err := s.CreateUser(ctx, u, "correct horse"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "dr.meena", "wrong horse"); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("wrong password err=%v", err)
	}
	if err := s.CreateUser(ctx, &edge.User{Username: "DR.MEENA", Role: edge.RoleDoctor}, "another one"); err == nil {
		t.Fatal("a username differing only in case was accepted")
	}
	if err := s.SetPassword(ctx, "dr.meena", "battery staple"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "dr.meena", "battery staple"); err != nil {
		t.Fatalf("new password refused: %v", err)
	}
	if err := s.DisableUser(ctx, "dr.meena"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "dr.meena", "battery staple"); !errors.Is(err, edge.ErrNotFound) {
		t.Fatal("a disabled user can log in")
	}
	if err := s.DisableUser(ctx, "nobody"); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("disable unknown err=%v", err)
	}
	for _, bad := range []edge.User{
		{Username: "x", Role: edge.RoleDoctor},
		{Username: "ok.name", Role: "superuser"},
		{Username: "ok.name", Role: edge.RoleDoctor, HPRID: "12"},
	} {
		if err := s.CreateUser(ctx, &bad, "long enough"); err == nil {
			t.Errorf("CreateUser(%+v) accepted", bad)
		}
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := edge.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	// Ensure the hash is argon2id with a salt, not the password, and differs each time.
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") || strings.Contains(h, "correct") {
		t.Fatalf("hash=%q", h)
	}
	if h2, _ := edge.HashPassword("correct horse"); h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2id$", "$argon2id$v=19$m=99999999,t=3,p=2$AAAA$AAAA", h[:len(h)-4]} {
		if edge.CheckPassword(bad, "correct horse") {
			t.Errorf("CheckPassword accepted hash %q", bad)
		}
	}
}
