package edge

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Audit actions of the web UI's sign-in, lock and settings.
const (
	ActionUserLogin       = "user.login"
	ActionUserLoginFailed = "user.login_failed"
	ActionUserLogout      = "user.logout"
	ActionUserLock        = "user.lock"
	ActionUserUnlock      = "user.unlock"
	ActionUserPIN         = "user.pin"
	ActionUserLanguage    = "user.language"
	ActionAccessDenied    = "access.denied"
)

// WebSession is a signed-in tablet. Sessions live in the database, so a node
// restart keeps everyone signed in; only the SHA-256 of the cookie token is
// stored, so a copy of the database does not hand out sessions.
type WebSession struct {
	User      User
	HasPIN    bool
	CSRFToken string
	Client    string

	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	// Locked is set by LockWebSession (the idle lock, or a tap on "lock");
	// the user's PIN or password unlocks it.
	Locked bool
}

// IdleFor is how long the session has been idle at now.
func (ws WebSession) IdleFor(now time.Time) time.Duration { return now.Sub(ws.LastSeenAt) }

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// CreateWebSession signs a user in: it stores a new session that expires
// after ttl and returns its token, to be sent once as a cookie. client names
// the tablet (its address), for the admin. The sign-in is audited as the user.
func (s *Store) CreateWebSession(ctx context.Context, userID, client string, ttl time.Duration) (string, WebSession, error) {
	token := randomToken()
	ws := WebSession{CSRFToken: randomToken(), Client: client}
	err := s.write(WithActor(ctx, Actor{Kind: ActorUser, ID: userID}), func(tx *Tx) error {
		ws.CreatedAt, ws.LastSeenAt, ws.ExpiresAt = tx.now, tx.now, tx.now.Add(ttl)
		if _, err := tx.exec(`INSERT INTO web_sessions (token_hash, user_id, csrf_token, client, created_at, last_seen_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, tokenHash(token), userID, ws.CSRFToken, client, tx.Now(), tx.Now(), ws.ExpiresAt.UnixMilli()); err != nil {
			if sqliteCode(err) == 19 {
				return fmt.Errorf("user %s: %w", userID, ErrNotFound)
			}
			return fmt.Errorf("create web session: %w", err)
		}
		if _, err := tx.exec(`DELETE FROM web_sessions WHERE expires_at < ?`, tx.Now()); err != nil {
			return fmt.Errorf("prune web sessions: %w", err)
		}
		return tx.audit(ActionUserLogin, "user", userID, "", "client="+client)
	})
	if err != nil {
		return "", WebSession{}, err
	}
	ws.User, err = s.UserByID(ctx, userID)
	return token, ws, err
}

// WebSession returns the live session of token with its user, or
// ErrNotFound when there is none, it expired, or its user is disabled.
func (s *Store) WebSession(ctx context.Context, token string) (WebSession, error) {
	var ws WebSession
	var created, seen, expires int64
	var pin sql.NullString
	u := &ws.User
	var ucreated int64
	err := s.readers.QueryRowContext(ctx, `SELECT ws.csrf_token, ws.client, ws.created_at, ws.last_seen_at, ws.expires_at,
		ws.locked, u.id, u.username, u.display_name, u.role, coalesce(u.hpr_id, ''), u.language, u.disabled, u.created_at, u.pin_hash
		FROM web_sessions ws JOIN users u ON u.id = ws.user_id WHERE ws.token_hash = ?`, tokenHash(token)).
		Scan(&ws.CSRFToken, &ws.Client, &created, &seen, &expires, &ws.Locked, &u.ID, &u.Username, &u.DisplayName,
			&u.Role, &u.HPRID, &u.Language, &u.Disabled, &ucreated, &pin)
	if errors.Is(err, sql.ErrNoRows) {
		return ws, ErrNotFound
	}
	if err != nil {
		return ws, fmt.Errorf("read web session: %w", err)
	}
	ws.CreatedAt, ws.LastSeenAt, ws.ExpiresAt = time.UnixMilli(created), time.UnixMilli(seen), time.UnixMilli(expires)
	u.CreatedAt = time.UnixMilli(ucreated)
	ws.HasPIN = pin.Valid && pin.String != ""
	if u.Disabled || !s.Now().Before(ws.ExpiresAt) {
		return WebSession{}, ErrNotFound
	}
	return ws, nil
}

// TouchWebSession records activity on the session now. Callers throttle it
// (once a minute is plenty for an idle lock of minutes).
func (s *Store) TouchWebSession(ctx context.Context, token string) error {
	return s.write(ctx, func(tx *Tx) error {
		_, err := tx.exec(`UPDATE web_sessions SET last_seen_at = ? WHERE token_hash = ? AND locked = 0`, tx.Now(), tokenHash(token))
		return err
	})
}

// LockWebSession locks the session: until it is unlocked, it shows nothing
// but the unlock page.
func (s *Store) LockWebSession(ctx context.Context, token string) error {
	return s.write(ctx, func(tx *Tx) error {
		var userID string
		err := tx.queryRow(`UPDATE web_sessions SET locked = 1 WHERE token_hash = ? AND locked = 0 RETURNING user_id`,
			tokenHash(token)).Scan(&userID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // already locked, or gone
		}
		if err != nil {
			return fmt.Errorf("lock web session: %w", err)
		}
		tx.actor = Actor{Kind: ActorUser, ID: userID}
		return tx.audit(ActionUserLock, "user", userID, "", "")
	})
}

// UnlockWebSession unlocks the session and counts now as activity.
func (s *Store) UnlockWebSession(ctx context.Context, token string) error {
	return s.write(ctx, func(tx *Tx) error {
		var userID string
		err := tx.queryRow(`UPDATE web_sessions SET locked = 0, last_seen_at = ? WHERE token_hash = ? RETURNING user_id`,
			tx.Now(), tokenHash(token)).Scan(&userID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("unlock web session: %w", err)
		}
		tx.actor = Actor{Kind: ActorUser, ID: userID}
		return tx.audit(ActionUserUnlock, "user", userID, "", "")
	})
}

// EndWebSession signs the session out. Ending a session that is gone is not
// an error.
func (s *Store) EndWebSession(ctx context.Context, token string) error {
	return s.write(ctx, func(tx *Tx) error {
		var userID string
		err := tx.queryRow(`DELETE FROM web_sessions WHERE token_hash = ? RETURNING user_id`, tokenHash(token)).Scan(&userID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("end web session: %w", err)
		}
		tx.actor = Actor{Kind: ActorUser, ID: userID}
		return tx.audit(ActionUserLogout, "user", userID, "", "")
	})
}

// shiftWebSessions moves every session's times by d, so that setting a wrong
// clock right neither expires everyone at once nor keeps them forever.
func shiftWebSessions(tx *Tx, d time.Duration) error {
	_, err := tx.exec(`UPDATE web_sessions SET created_at = created_at + ?, last_seen_at = last_seen_at + ?,
		expires_at = expires_at + ?`, d.Milliseconds(), d.Milliseconds(), d.Milliseconds())
	return err
}

// UserByID returns one user.
func (s *Store) UserByID(ctx context.Context, id string) (User, error) {
	return readUser(s.readers.QueryRowContext(ctx, userByIDQuery, id), id)
}

const userByIDQuery = `SELECT id, username, display_name, role, coalesce(hpr_id, ''), language,
	disabled, created_at FROM users WHERE id = ?`

// readUser scans the row of userByIDQuery for user id.
func readUser(row *sql.Row, id string) (User, error) {
	var u User
	var created int64
	err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Role, &u.HPRID, &u.Language, &u.Disabled, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	u.CreatedAt = time.UnixMilli(created)
	return u, err
}

// UserIDByUsername returns the ID of the user with this username (any case).
func (s *Store) UserIDByUsername(ctx context.Context, username string) (string, error) {
	var id string
	err := s.readers.QueryRowContext(ctx, `SELECT id FROM users WHERE username = ?`, username).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("user %q: %w", username, ErrNotFound)
	}
	return id, err
}

var (
	pinRe = regexp.MustCompile(`^\d{4,8}$`)
	// languageRe is a language tag; the web UI checks it names a catalogue.
	languageRe = regexp.MustCompile(`^[a-z]{2,3}(-[A-Z]{2})?$`)
)

// SetPIN sets the user's PIN, 4 to 8 digits, that unlocks their locked
// tablet. It is hashed like a password.
func (s *Store) SetPIN(ctx context.Context, userID, pin string) error {
	if !pinRe.MatchString(pin) {
		return FieldErrors{"pin": "error.pin_invalid"}
	}
	hash, err := HashPassword(pin)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *Tx) error {
		res, err := tx.exec(`UPDATE users SET pin_hash = ?, updated_at = ? WHERE id = ?`, hash, tx.Now(), userID)
		if err != nil {
			return fmt.Errorf("set PIN: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %s: %w", userID, ErrNotFound)
		}
		if tx.actor.Kind == "" {
			tx.actor = Actor{Kind: ActorUser, ID: userID}
		}
		return tx.audit(ActionUserPIN, "user", userID, "", "")
	})
}

// CheckPIN reports whether pin is the user's PIN. A user without a PIN has
// none that matches.
func (s *Store) CheckPIN(ctx context.Context, userID, pin string) (bool, error) {
	var hash sql.NullString
	err := s.readers.QueryRowContext(ctx, `SELECT pin_hash FROM users WHERE id = ? AND disabled = 0`, userID).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("user %s: %w", userID, ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("read PIN: %w", err)
	}
	if !hash.Valid || hash.String == "" {
		CheckPassword(dummyHash(), pin) // same time either way
		return false, nil
	}
	return CheckPassword(hash.String, pin), nil
}

// SetUserLanguage sets the language the user's pages are shown in.
func (s *Store) SetUserLanguage(ctx context.Context, userID, lang string) error {
	if !languageRe.MatchString(lang) {
		return FieldErrors{"language": "error.language_invalid"}
	}
	return s.write(ctx, func(tx *Tx) error {
		res, err := tx.exec(`UPDATE users SET language = ?, updated_at = ? WHERE id = ?`, lang, tx.Now(), userID)
		if err != nil {
			return fmt.Errorf("set language: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %s: %w", userID, ErrNotFound)
		}
		if tx.actor.Kind == "" {
			tx.actor = Actor{Kind: ActorUser, ID: userID}
		}
		return tx.audit(ActionUserLanguage, "user", userID, "", "language="+lang)
	})
}

// Audit records an access or an administrative act that no other store
// method records: a sign-in refused, a page refused for its role, a slip
// printed. detail is for operators and must not hold PHI. It returns once
// the entry has committed, in a transaction shared with other callers'
// entries (see readAudits).
func (s *Store) Audit(ctx context.Context, action, entity, entityID, patientID, detail string) error {
	return s.auditRead(ctx, auditItem{action, entity, entityID, patientID, detail})
}
