package serial

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/line"
	"github.com/healthpost/healthpost/edge"
)

// Ports defaults.
const (
	// DefaultIdleTimeout is how long a port may stay silent before it is
	// treated as disconnected and reopened. Devices that print only when
	// used are silent for hours; reopening them costs nothing, and a cable
	// that broke without a sound is found within this time.
	DefaultIdleTimeout = 30 * time.Minute
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait between tries
	// to open a port. A port whose device node reappears (a replugged USB
	// adapter) is tried at once.
	DefaultMinBackoff = 1 * time.Second
	DefaultMaxBackoff = 30 * time.Second
	// DefaultFlushInterval is how often the Ingestor's counters are written.
	DefaultFlushInterval = 5 * time.Second
	// DefaultLineRepeatWindow drops a line identical to the one just before
	// it within this time: a scale in continuous mode prints the same
	// stable weight many times a second, and it is one reading.
	DefaultLineRepeatWindow = 3 * time.Second
	// DefaultLineProblemDelay gathers the lines that gave no reading into
	// one problem report (one counter increment and one raw frame holding
	// them all) for this long, so a scale printing unstable weights ten
	// times a second does not cost ten writes a second.
	DefaultLineProblemDelay = 5 * time.Second
)

// Codecs a serial device may have.
var serialCodecs = []string{"auto", "hl7", "astm", "line"}

// Ports is the node's serial subsystem: for every enabled device with
// transport "serial" it runs one runner that opens the device's port, speaks
// its codec and stores its readings, and reopens the port with capped
// exponential backoff when it is unplugged, hangs up or goes silent. The
// runner writes what is happening to the device's status (through the
// Ingestor) in plain sentences that name the port and the fix.
//
// A device's problem never fails Open; Open fails only when the registry
// cannot be read. Close stops reading, lets messages being stored finish
// and be acknowledged, closes the ports and flushes the counters.
type Ports struct {
	Store    *edge.Store
	Ingestor *devices.Ingestor
	Logger   *slog.Logger

	// Opening ports.
	Opener     Opener        // nil: Tarm with ReadTick
	ReadTick   time.Duration // how long a silent read waits; 0: DefaultReadTick
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// IdleTimeout treats a port that sent nothing for this long as
	// disconnected; 0 turns it off.
	IdleTimeout time.Duration

	// Codecs.
	Location         *time.Location // device clocks; nil: devices.DeviceLocation
	MaxFrameSize     int            // HL7 over serial; 0: mllp.DefaultMaxFrameSize
	IngestTimeout    time.Duration  // bounds storing one message; 0: mllp.DefaultIngestTimeout
	ASTMFrameTimeout time.Duration  // ASTM: wait for the next frame; 0: astm.DefaultFrameTimeout
	LineRepeatWindow time.Duration  // 0 keeps every line
	LineProblemDelay time.Duration  // 0 reports each bad line on its own
	MaxLineIngests   int            // line readings being stored at once; 0: 64

	// FlushInterval is how often the Ingestor's counters are written to the
	// registry; 0 turns the flusher off (when another subsystem flushes the
	// same Ingestor). Close flushes once either way.
	FlushInterval time.Duration

	// Hooks, for the simulator's figures and for tests; each must not block.
	// OnStatus is called with each new status of a device, after the
	// Ingestor has it; OnStored after each message or line whose readings
	// committed; OnProblem after each problem counted against a device.
	OnStatus  func(dev edge.Device, status string)
	OnStored  func(dev edge.Device, codec string)
	OnProblem func(dev edge.Device, problem string)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	status map[string]string // last status by device ID
}

// NewPorts returns a Ports with the defaults set.
func NewPorts(store *edge.Store, in *devices.Ingestor, logger *slog.Logger) *Ports {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Ports{
		Store: store, Ingestor: in, Logger: logger.With(edge.LogKeySubsystem, "serial"),
		ReadTick: DefaultReadTick, MinBackoff: DefaultMinBackoff, MaxBackoff: DefaultMaxBackoff,
		IdleTimeout: DefaultIdleTimeout, FlushInterval: DefaultFlushInterval,
		LineRepeatWindow: DefaultLineRepeatWindow, LineProblemDelay: DefaultLineProblemDelay,
	}
}

// device is one serial device as its runner sees it.
type device struct {
	dev  edge.Device
	st   devices.Settings
	line *line.Decoder // nil when the device has no pattern
	log  rateLog
}

// Open starts a runner for every enabled serial device.
func (p *Ports) Open(ctx context.Context) error {
	devs, err := p.Store.Devices(ctx)
	if err != nil {
		return fmt.Errorf("open serial ports: %w", err)
	}
	p.ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	p.status = map[string]string{}
	if p.Opener == nil {
		p.Opener = Tarm{ReadTimeout: p.ReadTick}
	}
	byPort := map[string]string{}
	for _, d := range devs {
		if !d.Enabled || d.Transport != "serial" {
			continue
		}
		st, err := devices.ParseSettings(d)
		if err != nil {
			p.setStatus(d, err.Error())
			continue
		}
		if !slices.Contains(serialCodecs, d.Codec) {
			p.setStatus(d, fmt.Sprintf("%s has codec %s, which does not run over a serial port; use hl7, astm, line or auto", d.Name, d.Codec))
			continue
		}
		if other, taken := byPort[st.Port]; taken {
			p.setStatus(d, fmt.Sprintf("%s is set to %s, which %s already uses; give each device its own port", d.Name, st.Port, other))
			continue
		}
		byPort[st.Port] = d.Name
		sd := &device{dev: d, st: st}
		if st.Pattern != "" {
			if sd.line, err = line.NewDecoder(st); err != nil {
				p.setStatus(d, fmt.Sprintf("%s: %v", d.Name, err))
				continue
			}
		}
		p.wg.Add(1)
		go p.run(sd)
	}
	if p.FlushInterval > 0 {
		p.wg.Add(1)
		go p.flushLoop()
	}
	return nil
}

// Close stops every runner: reading stops, a message being stored is
// finished and acknowledged, ports close, and the counters are flushed. If
// ctx ends first, Close returns without waiting for the runners.
func (p *Ports) Close(ctx context.Context) error {
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("close serial ports: %w", ctx.Err())
	}
	if ferr := p.Ingestor.Flush(context.WithoutCancel(ctx)); ferr != nil {
		err = errors.Join(err, fmt.Errorf("close serial ports: flush counters: %w", ferr))
	}
	return err
}

// run keeps one device's port open and served until the node stops.
func (p *Ports) run(d *device) {
	defer p.wg.Done()
	backoff := p.MinBackoff
	var last error // why the previous connection ended
	for p.ctx.Err() == nil {
		conn, err := Open(p.Opener, d.st.Port, d.st.Baud, Framing{DataBits: d.st.DataBits, Parity: d.st.Parity, StopBits: d.st.StopBits})
		if err != nil {
			p.setStatus(d.dev, openProblem(d, err, last))
			if !p.wait(backoff, d.st.Port, errors.Is(err, fs.ErrNotExist)) {
				return
			}
			backoff = min(2*backoff, p.MaxBackoff)
			continue
		}
		conn.IdleTimeout, conn.Tick = p.IdleTimeout, p.ReadTick
		if !errors.Is(last, ErrSilent) {
			// After silence the port was never gone: keep saying so until
			// the device talks again.
			p.setStatus(d.dev, fmt.Sprintf("listening on %s at %d baud", d.st.Port, d.st.Baud))
		}
		started := time.Now()
		err = p.serve(d, conn)
		conn.Close()
		if p.ctx.Err() != nil {
			return
		}
		var fatal *configError
		if errors.As(err, &fatal) {
			p.setStatus(d.dev, fatal.status)
			return // it needs a new setting and a restart, not retries
		}
		last = err
		p.setStatus(d.dev, lostProblem(d, err))
		if conn.GotData() || time.Since(started) > p.MaxBackoff || errors.Is(err, ErrSilent) {
			backoff = p.MinBackoff
		}
		wait := backoff
		if errors.Is(err, ErrSilent) {
			wait = 0
		}
		if !p.wait(wait, d.st.Port, false) {
			return
		}
		backoff = min(2*backoff, p.MaxBackoff)
	}
}

// wait waits d, or until the node stops. When untilNode, it also returns
// as soon as the port's device node appears.
func (p *Ports) wait(d time.Duration, port string, untilNode bool) bool {
	if d <= 0 {
		return p.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	var poll <-chan time.Time
	if untilNode {
		tick := time.NewTicker(p.tick())
		defer tick.Stop()
		poll = tick.C
	}
	for {
		select {
		case <-p.ctx.Done():
			return false
		case <-t.C:
			return true
		case <-poll:
			if _, err := os.Stat(port); err == nil {
				return true
			}
		}
	}
}

func (p *Ports) tick() time.Duration {
	if p.ReadTick <= 0 {
		return DefaultReadTick
	}
	return p.ReadTick
}

// configError ends a runner: the device needs a new setting.
type configError struct{ status string }

func (e *configError) Error() string { return e.status }

// openProblem says why a port did not open, and what to do.
func openProblem(d *device, err, last error) string {
	name, port := d.dev.Name, d.st.Port
	switch {
	case errors.Is(err, fs.ErrNotExist) && errors.Is(last, ErrUnplugged):
		return fmt.Sprintf("%s on %s was unplugged; plug it back in", name, port)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%s on %s is not plugged in; plug it in, or check the port name", name, port)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("the node may not open %s for %s; add the healthpost user to the dialout group", port, name)
	case errors.Is(err, syscall.EBUSY):
		return fmt.Sprintf("%s for %s is in use by another program; close it", port, name)
	case strings.Contains(err.Error(), "baud"):
		return fmt.Sprintf("%s for %s does not take %d baud; set the device's baud rate (9600, 19200, 38400, 57600 or 115200)", port, name, d.st.Baud)
	default:
		return fmt.Sprintf("%s for %s did not open (%v); check the port name and settings", port, name, err)
	}
}

// lostProblem says why a connection ended, and what to do.
func lostProblem(d *device, err error) string {
	name, port := d.dev.Name, d.st.Port
	switch {
	case errors.Is(err, ErrUnplugged):
		return fmt.Sprintf("%s on %s was unplugged; plug it back in", name, port)
	case errors.Is(err, ErrSilent):
		return fmt.Sprintf("%s on %s stopped answering; check the cable", name, port)
	case errors.Is(err, ErrHungUp):
		return fmt.Sprintf("%s on %s hung up; check the cable and that the device is switched on", name, port)
	default:
		return fmt.Sprintf("%s on %s failed (%v); check the cable", name, port, err)
	}
}

// setStatus records a device's status when it changed, and logs it.
func (p *Ports) setStatus(d edge.Device, status string) {
	p.mu.Lock()
	same := p.status[d.ID] == status
	p.status[d.ID] = status
	p.mu.Unlock()
	if same {
		return
	}
	p.Ingestor.SetStatus(d, status)
	p.Logger.Info("device status", edge.LogKeyDevice, d.Name, "status", status)
	if p.OnStatus != nil {
		p.OnStatus(d, status)
	}
}

func (p *Ports) flushLoop() {
	defer p.wg.Done()
	t := time.NewTicker(p.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			if err := p.Ingestor.Flush(p.ctx); err != nil && p.ctx.Err() == nil {
				p.Logger.Warn("flush device counters", "err", err)
			}
		}
	}
}
