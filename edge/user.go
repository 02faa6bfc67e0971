package edge

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// Roles decide which pages and actions a user has.
const (
	RoleHealthWorker = "health-worker"
	RoleDoctor       = "doctor"
	RoleAdmin        = "admin"
	RoleTechnician   = "technician"
)

// Roles lists every role, for validation and menus.
var Roles = []string{RoleHealthWorker, RoleDoctor, RoleAdmin, RoleTechnician}

// User is a person who logs in to the node.
type User struct {
	ID          string    `json:"id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	Role        string    `json:"role"`
	HPRID       string    `json:"hpr_id,omitempty"` // Healthcare Professionals Registry ID
	Language    string    `json:"language"`
	Disabled    bool      `json:"disabled"`
	CreatedAt   time.Time `json:"created_at"`
}

var usernameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,31}$`)

// hprRe is the HPR ID shape: 14 digits, plain or 2-4-4-4 (reference/abdm.md).
var hprRe = regexp.MustCompile(`^\d{2}-\d{4}-\d{4}-\d{4}$|^\d{14}$`)

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 8

// Validate checks the user's fields.
func (u *User) Validate() error {
	fe := FieldErrors{}
	if !usernameRe.MatchString(u.Username) {
		fe["username"] = "error.username_invalid"
	}
	if !validRole(u.Role) {
		fe["role"] = "error.role_invalid"
	}
	if u.HPRID != "" && !hprRe.MatchString(u.HPRID) {
		fe["hpr_id"] = "error.hpr_invalid"
	}
	if u.Language != "en" && u.Language != "hi" {
		fe["language"] = "error.language_invalid"
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

func validRole(r string) bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

// Argon2id parameters: RFC 9106's second recommended option (64 MiB, 3
// passes), with 2 lanes for the Pi's cores. About 0.2 s on a Pi 4.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
)

// argonSlots bounds how many argon2 hashes run at once. Each takes
// argonMemory (64 MiB); twenty tablets signing in together at the start of a
// shift must queue for a few hundred milliseconds, not ask a Pi for 1.3 GB.
var argonSlots = make(chan struct{}, 2)

// argon2Key runs argon2id in one of the slots.
func argon2Key(password, salt []byte, t, m uint32, p uint8, keyLen uint32) []byte {
	argonSlots <- struct{}{}
	defer func() { <-argonSlots }()
	return argon2.IDKey(password, salt, t, m, p, keyLen)
}

// HashPassword hashes a password with argon2id into a PHC-format string.
func HashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2Key([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches a hash made by HashPassword.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var ver int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &ver); err != nil || ver != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 1<<20 || t > 16 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2Key([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// GeneratePassword returns a random password that is easy to read aloud and
// type on a tablet: 4 groups of 4 lowercase letters and digits, without
// look-alikes (0/o, 1/l).
func GeneratePassword() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	var sb strings.Builder
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return sb.String()
}

// CreateUser adds a user with the given password.
func (s *Store) CreateUser(ctx context.Context, u *User, password string) error {
	if u.Language == "" {
		u.Language = "en"
	}
	if err := u.Validate(); err != nil {
		return err
	}
	if len(password) < MinPasswordLen {
		return FieldErrors{"password": "error.password_short"}
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	if u.ID == "" {
		u.ID = NewID()
	}
	return s.write(ctx, func(tx *Tx) error {
		u.CreatedAt = tx.now
		if _, err := tx.exec(`INSERT INTO users (id, username, display_name, role, hpr_id, password_hash,
			language, created_at, updated_at, node_seq, clock_suspect) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.Username, u.DisplayName, u.Role, nullString(u.HPRID), hash, u.Language, tx.Now(), tx.Now(),
			tx.NextSeq(), tx.Suspect()); err != nil {
			if sqliteCode(err) == 19 { // SQLITE_CONSTRAINT: the username is taken
				return FieldErrors{"username": "error.username_taken"}
			}
			return fmt.Errorf("create user: %w", err)
		}
		return tx.audit(ActionUserCreate, "user", u.ID, "", "role="+u.Role)
	})
}

// SetPassword replaces a user's password.
func (s *Store) SetPassword(ctx context.Context, username, password string) error {
	if len(password) < MinPasswordLen {
		return FieldErrors{"password": "error.password_short"}
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *Tx) error {
		var id string
		if err := tx.queryRow(`UPDATE users SET password_hash = ?, updated_at = ? WHERE username = ? RETURNING id`,
			hash, tx.Now(), username).Scan(&id); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("user %q: %w", username, ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		// Existing sessions end: a changed password is often a lost tablet.
		if _, err := tx.exec(`DELETE FROM web_sessions WHERE user_id = ?`, id); err != nil {
			return err
		}
		return tx.audit(ActionUserPassword, "user", id, "", "")
	})
}

// DisableUser stops a user from logging in and ends their sessions.
func (s *Store) DisableUser(ctx context.Context, username string) error {
	return s.write(ctx, func(tx *Tx) error {
		var id string
		if err := tx.queryRow(`UPDATE users SET disabled = 1, updated_at = ? WHERE username = ? RETURNING id`,
			tx.Now(), username).Scan(&id); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("user %q: %w", username, ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("disable user: %w", err)
		}
		if _, err := tx.exec(`DELETE FROM web_sessions WHERE user_id = ?`, id); err != nil {
			return err
		}
		return tx.audit(ActionUserDisable, "user", id, "", "")
	})
}

// Users lists every user, by username.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT id, username, display_name, role, coalesce(hpr_id, ''), language,
		disabled, created_at FROM users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var created int64
		if err := rows.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Role, &u.HPRID, &u.Language, &u.Disabled, &created); err != nil {
			return nil, err
		}
		u.CreatedAt = time.UnixMilli(created)
		out = append(out, u)
	}
	return out, rows.Err()
}

// Authenticate returns the enabled user whose password matches, or
// ErrNotFound. It takes the same time whether or not the user exists.
func (s *Store) Authenticate(ctx context.Context, username, password string) (User, error) {
	var u User
	var hash string
	var created int64
	err := s.readers.QueryRowContext(ctx, `SELECT id, username, display_name, role, coalesce(hpr_id, ''), language,
		disabled, created_at, password_hash FROM users WHERE username = ?`, username).
		Scan(&u.ID, &u.Username, &u.DisplayName, &u.Role, &u.HPRID, &u.Language, &u.Disabled, &created, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		CheckPassword(dummyHash(), password)
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, err
	}
	if !CheckPassword(hash, password) || u.Disabled {
		return User{}, ErrNotFound
	}
	u.CreatedAt = time.UnixMilli(created)
	return u, nil
}

// dummyHash is checked against when a username does not exist, so a wrong
// username costs as much time as a wrong password.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("not a real password")
	return h
})

// EnsureFirstAdmin creates the account "admin" with a generated password when
// the node has no users yet, and returns that password once. With users
// present it returns "".
func (s *Store) EnsureFirstAdmin(ctx context.Context) (string, error) {
	var n int
	if err := s.readers.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return "", err
	}
	if n > 0 {
		return "", nil
	}
	pw := GeneratePassword()
	u := &User{Username: "admin", DisplayName: "Administrator", Role: RoleAdmin}
	if err := s.CreateUser(WithActor(ctx, Actor{Kind: ActorSystem, ID: "first-start"}), u, pw); err != nil {
		return "", err
	}
	return pw, nil
}
