package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
)

// Subsystem is a part of the node with the common lifecycle: Open starts it
// (listening synchronously, so a busy port fails Open), Close stops it.
type Subsystem interface {
	Open(ctx context.Context) error
	Close(ctx context.Context) error
}

// Node is one running healthpost: the data directory's lock, the store, and
// the subsystems built on it. Subsystems are opened in the order added and
// closed in reverse, the store last, so the group-commit writer drains after
// every producer of readings has stopped.
type Node struct {
	Config *Config
	Logger *slog.Logger
	Store  *Store

	// FirstAdminPassword is set when Open created the first admin account.
	FirstAdminPassword string

	lock       *DirLock
	subsystems []Subsystem
}

// NewNode returns a node for cfg.
func NewNode(cfg *Config, logger *slog.Logger) *Node {
	return &Node{Config: cfg, Logger: logger}
}

// Open takes the data directory, opens and migrates the store, records the
// facility's identity, and creates the first admin account on an empty node.
func (n *Node) Open(ctx context.Context) (err error) {
	if n.lock, err = LockDataDir(n.Config.DataDir); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			n.lock.Release()
		}
	}()
	s := NewStore(n.Config.DBPath())
	s.Logger = n.Logger
	s.LowFreeBytes = n.Config.Storage.LowFreeMB << 20
	s.CriticalFreeBytes = n.Config.Storage.CriticalFreeMB << 20
	s.RawKeepDays = n.Config.Storage.RawKeepDays
	if err := s.Open(ctx); err != nil {
		return err
	}
	n.Store = s
	if err := s.SetFacility(ctx, n.Config.Facility); err != nil {
		s.Close(ctx)
		return err
	}
	if n.FirstAdminPassword, err = s.EnsureFirstAdmin(ctx); err != nil {
		s.Close(ctx)
		return fmt.Errorf("create first admin: %w", err)
	}
	if n.FirstAdminPassword != "" {
		// Hashing the password took argon2's 64 MiB; hand it back now
		// rather than idle with it until the scavenger gets round to it.
		debug.FreeOSMemory()
	}
	return nil
}

// Add opens a subsystem and keeps it for Close.
func (n *Node) Add(ctx context.Context, sub Subsystem) error {
	if err := sub.Open(ctx); err != nil {
		return err
	}
	n.subsystems = append(n.subsystems, sub)
	return nil
}

// Close stops the subsystems in reverse order, then the store, then lets go
// of the data directory.
func (n *Node) Close(ctx context.Context) error {
	var errs []error
	for i := len(n.subsystems) - 1; i >= 0; i-- {
		errs = append(errs, n.subsystems[i].Close(ctx))
	}
	n.subsystems = nil
	if n.Store != nil {
		errs = append(errs, n.Store.Close(ctx))
	}
	errs = append(errs, n.lock.Release())
	return errors.Join(errs...)
}

// SetFacility records the facility identity from the config, and generates
// the node ID on first start when the config names none.
func (s *Store) SetFacility(ctx context.Context, f FacilityConfig) error {
	return s.write(ctx, func(tx *Tx) error {
		if _, err := tx.exec(`INSERT INTO facility (id, name, hfr_id, district, state, updated_at)
			VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name, hfr_id = excluded.hfr_id,
			district = excluded.district, state = excluded.state, updated_at = excluded.updated_at
			WHERE (name, hfr_id, district, state) IS NOT (excluded.name, excluded.hfr_id, excluded.district, excluded.state)`,
			f.Name, f.HFRID, f.District, f.State, tx.Now()); err != nil {
			return fmt.Errorf("save facility: %w", err)
		}
		id := f.NodeID
		if id == "" {
			id = "node-" + strings.ReplaceAll(NewID(), "-", "")[20:]
			if _, err := tx.exec(`INSERT INTO meta (key, value) VALUES ('node_id', ?) ON CONFLICT DO NOTHING`, id); err != nil {
				return err
			}
			return nil
		}
		_, err := tx.exec(`INSERT INTO meta (key, value) VALUES ('node_id', ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, id)
		return err
	})
}

// NodeID is this node's name at the hub.
func (s *Store) NodeID(ctx context.Context) (string, error) {
	var id string
	err := s.readers.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'node_id'`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return id, err
}
