package edge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Check is one line of `healthpost doctor`.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, warn or fail
	Detail string `json:"detail"`
}

// Check statuses. Only fail makes the node unhealthy.
const (
	CheckOK   = "ok"
	CheckWarn = "warn"
	CheckFail = "fail"
)

// Healthy reports whether no check failed.
func Healthy(checks []Check) bool {
	return !slices.ContainsFunc(checks, func(c Check) bool { return c.Status == CheckFail })
}

// MinFsyncPerSecond is the rate below which the data disk is too slow for
// durable writes at a busy OPD (a worn SD card).
const MinFsyncPerSecond = 20

// Diagnose runs the doctor's checks against an open store and the config.
func Diagnose(ctx context.Context, cfg *Config, s *Store) []Check {
	var checks []Check
	add := func(name, status, format string, args ...any) {
		checks = append(checks, Check{Name: name, Status: status, Detail: fmt.Sprintf(format, args...)})
	}

	if err := s.IntegrityCheck(ctx); err != nil {
		add("database", CheckFail, "%v", err)
	} else {
		v, _ := s.DatabaseVersion(ctx)
		add("database", CheckOK, "%s: integrity ok, schema version %d", s.Path, v)
	}

	st, err := s.CheckStorage(ctx)
	switch {
	case err != nil:
		add("disk", CheckFail, "%v", err)
	case st.Level == StorageCritical:
		add("disk", CheckFail, "%s", st.Message())
	case st.Level == StorageLow:
		add("disk", CheckWarn, "%s", st.Message())
	default:
		add("disk", CheckOK, "%s", st.Message())
	}

	if c := s.Clock(); c.Suspect {
		add("clock", CheckFail, "%s", c.Message())
	} else {
		add("clock", CheckOK, "%s (%s UTC)", c.Message(), c.Now.UTC().Format(time.DateTime))
	}

	if rate, err := FsyncRate(filepath.Dir(s.Path), 20); err != nil {
		add("fsync", CheckFail, "cannot measure the data disk: %v", err)
	} else if rate < MinFsyncPerSecond {
		add("fsync", CheckWarn, "the data disk syncs only %.0f times a second (want at least %d); it may be a worn or slow SD card", rate, MinFsyncPerSecond)
	} else {
		add("fsync", CheckOK, "%.0f durable writes a second", rate)
	}

	nodeRunning := DataDirLocked(cfg.DataDir)
	for _, p := range []struct{ name, addr string }{{"http port", cfg.HTTP.Listen}, {"mqtt port", cfg.MQTT.Listen}} {
		if p.addr == "" {
			continue
		}
		switch free, err := portFree(p.addr); {
		case free:
			add(p.name, CheckOK, "%s is free for the node", p.addr)
		case nodeRunning:
			add(p.name, CheckOK, "%s is in use, by the running node", p.addr)
		default:
			add(p.name, CheckFail, "%s is used by another program (%v); stop it or change %s in the config", p.addr, err, p.name)
		}
	}

	if ports := SerialPorts(); len(ports) == 0 {
		add("serial ports", CheckWarn, "no USB or serial ports found; plug in the device's cable if one should be there")
	} else {
		add("serial ports", CheckOK, "%v", ports)
	}

	if rep, err := s.VerifyAudit(ctx); err != nil {
		add("audit log", CheckFail, "%v", err)
	} else if !rep.OK() {
		add("audit log", CheckFail, "%d entries, %d problems; first: %s", rep.Entries, len(rep.Problems), rep.Problems[0].Problem)
	} else {
		add("audit log", CheckOK, "%d entries, chain intact", rep.Entries)
	}

	if ob, err := s.OutboxStats(ctx); err != nil {
		add("outbox", CheckFail, "%v", err)
	} else {
		var pending, quarantined int64
		for _, c := range ob.Counts {
			switch c.State {
			case OutboxPending, OutboxExported:
				pending += c.Count
			case OutboxQuarantined:
				quarantined += c.Count
			}
		}
		status := CheckOK
		if quarantined > 0 {
			status = CheckWarn
		}
		oldest := "none"
		if !ob.OldestPending.IsZero() {
			oldest = ob.OldestPending.UTC().Format(time.DateTime) + " UTC"
		}
		add("outbox", status, "%d documents waiting (oldest %s), %d refused upstream and waiting for an admin", pending, oldest, quarantined)
	}
	return checks
}

// IntegrityCheck runs SQLite's integrity_check and foreign_key_check.
func (s *Store) IntegrityCheck(ctx context.Context) error {
	var res string
	if err := s.readers.QueryRowContext(ctx, `PRAGMA integrity_check(1)`).Scan(&res); err != nil {
		return explainOpenError(s.Path, err)
	}
	if res != "ok" {
		return &Error{Code: "db_corrupt", Message: "database integrity check failed: " + res,
			Hint: "stop the node and restore the latest backup (healthpost restore FILE)", Err: ErrNotDatabase}
	}
	rows, err := s.readers.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		return errors.New("database has records that point at missing records (foreign_key_check)")
	}
	return rows.Err()
}

// FsyncRate measures how many write+fsync rounds a second dir sustains.
func FsyncRate(dir string, rounds int) (float64, error) {
	f, err := os.CreateTemp(dir, ".fsync-probe-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	start := time.Now()
	for i := range rounds {
		if _, err := f.WriteAt(buf, int64(i)*4096); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
	}
	return float64(rounds) / time.Since(start).Seconds(), nil
}

func portFree(addr string) (bool, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false, err
	}
	l.Close()
	return true, nil
}

// SerialPorts lists the serial device nodes present: USB adapters, ACM devices
// and the Pi's UART, by their stable /dev/serial/by-id names where udev made them.
func SerialPorts() []string {
	var out []string
	for _, pattern := range []string{"/dev/serial/by-id/*", "/dev/ttyUSB*", "/dev/ttyACM*", "/dev/ttyAMA*", "/dev/healthpost/*"} {
		m, _ := filepath.Glob(pattern)
		out = append(out, m...)
	}
	return out
}
