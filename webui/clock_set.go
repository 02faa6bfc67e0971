package webui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// ErrClockNotSettable means the node cannot set the operating system's
// clock: it does not run as root (the packaged service does not).
var ErrClockNotSettable = errors.New("the node is not allowed to set the system clock")

// SetSystemClock sets the operating system's clock to t with date(1). Only
// root may; as any other user it returns ErrClockNotSettable with a hint,
// and the admin page shows the difference to set by hand.
func SetSystemClock(ctx context.Context, t time.Time) error {
	if os.Geteuid() != 0 {
		return &edge.Error{Code: "clock_not_settable", Message: "the node runs without permission to set the system clock",
			Hint: fmt.Sprintf("as root run: date -u -s '%s' (or connect the node to the internet for NTP)",
				t.UTC().Format("2006-01-02 15:04:05")), Err: ErrClockNotSettable}
	}
	out, err := exec.CommandContext(ctx, "date", "-u", "-s", "@"+fmt.Sprint(t.Unix())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("set system clock: %v: %s", err, out)
	}
	// Keep the hardware clock too, where there is one; a Pi has none.
	_ = exec.CommandContext(ctx, "hwclock", "--systohc", "--utc").Run()
	return nil
}
