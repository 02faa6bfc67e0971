package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/devices/astm"
	"github.com/healthpost/healthpost/devices/hl7"
	"github.com/healthpost/healthpost/devices/mllp"
	"github.com/healthpost/healthpost/devices/serial"
)

// simulateOptions are the flags of `healthpost device simulate`.
type simulateOptions struct {
	codec   string
	to      string // serial port
	tcp     string // address of an MLLP listener
	baud    int
	rate    float64 // messages per second; 0: as fast as the answers come
	count   int     // 0: until interrupted
	patient string
	timeout time.Duration
}

// simulateLinePattern is the pattern a node's line device needs to read
// what the simulator prints.
const simulateLinePattern = `WT:\s*(?P<value>[0-9.]+)\s*(?P<unit>kg|lb)`

func (a *app) deviceSimulateCommand() *cobra.Command {
	var o simulateOptions
	cmd := &cobra.Command{
		Use:   "simulate --codec hl7|astm|line (--to PORT | --tcp HOST:PORT)",
		Short: "Play a medical device: send readings and print the acknowledgements",
		Long: `Play a medical device on a serial port or over TCP, as a technician does to
test a cable or a node, and for demos and benchmarks.

  hl7   a blood-pressure monitor: ORU^R01 messages (systolic, diastolic, pulse)
        framed with MLLP, each waiting for its ACK (AA, AE or AR)
  astm  a glucose analyzer: ASTM E1381 transmissions (glucose, haemoglobin),
        each frame waiting for ACK or NAK
  line  a weighing scale printing "WT: 62.4 kg" lines; nothing is answered.
        The node's device needs --pattern '` + simulateLinePattern + `' --code 29463-7

--to is a serial port (the other end of the cable, or a pseudo-terminal from
socat); --tcp is a node's MLLP address (hl7 only). Every value is made up and
marked with the simulator's message IDs (SIM...).`,
		Example: `  healthpost device simulate --codec hl7 --tcp 127.0.0.1:2575 --count 10
  healthpost device simulate --codec astm --to /dev/ttyUSB0 --baud 9600 --patient P-000001
  healthpost device simulate --codec line --to /dev/pts/3 --rate 5 --count 0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			return a.simulate(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.codec, "codec", "", "hl7, astm or line")
	f.StringVar(&o.to, "to", "", "serial port to send on, e.g. /dev/ttyUSB0 or /dev/pts/3")
	f.StringVar(&o.tcp, "tcp", "", "MLLP address of the node, e.g. 127.0.0.1:2575 (hl7 only)")
	f.IntVar(&o.baud, "baud", 9600, "serial speed")
	f.Float64Var(&o.rate, "rate", 0, "messages per second (0: as fast as the node answers)")
	f.IntVar(&o.count, "count", 1, "messages to send (0: until interrupted)")
	f.StringVar(&o.patient, "patient", "", "patient ID the messages carry, e.g. P-000001 (default none)")
	f.DurationVar(&o.timeout, "timeout", 15*time.Second, "how long to wait for each acknowledgement")
	return cmd
}

// check validates the flags, naming the fix.
func (o *simulateOptions) check() error {
	const try = "healthpost device simulate --codec hl7 --tcp 127.0.0.1:2575"
	switch {
	case !slices.Contains([]string{"hl7", "astm", "line"}, o.codec):
		return usageError("--codec must be hl7, astm or line", try)
	case o.to == "" && o.tcp == "":
		return usageError("where to send: --to a serial port or --tcp an address", try)
	case o.to != "" && o.tcp != "":
		return usageError("give --to or --tcp, not both", try)
	case o.tcp != "" && o.codec != "hl7":
		return usageError("the node takes only HL7 over TCP; use --to a serial port for "+o.codec, "healthpost device simulate --codec "+o.codec+" --to /dev/ttyUSB0")
	case o.rate < 0 || o.count < 0 || o.timeout <= 0:
		return usageError("--rate and --count cannot be negative, and --timeout must be positive", try)
	}
	return nil
}

// simulateSummary is what a run did, printed at the end.
type simulateSummary struct {
	Codec        string  `json:"codec"`
	Sent         int     `json:"sent"`
	Acknowledged int     `json:"acknowledged"`
	Refused      int     `json:"refused"`
	Unanswered   int     `json:"unanswered"`
	Bytes        int64   `json:"bytes"`
	Seconds      float64 `json:"seconds"`
	PerSecond    float64 `json:"per_second"`
	P50ms        float64 `json:"p50_ms,omitempty"`
	P99ms        float64 `json:"p99_ms,omitempty"`
}

// simulator is one run: a connection and the device it plays.
type simulator struct {
	o       simulateOptions
	rw      mllp.Stream
	out     io.Writer
	run     string // tells this run's message IDs from earlier runs'
	client  *mllp.Client
	sender  *astm.Sender
	written int64
}

func (a *app) simulate(ctx context.Context, o simulateOptions) error {
	s := &simulator{o: o, out: a.stdout, run: strconv.FormatInt(time.Now().UnixMilli()%(36*36*36*36), 36)}
	where := o.to
	if o.tcp != "" {
		where = o.tcp
		c, err := (&net.Dialer{Timeout: o.timeout}).DialContext(ctx, "tcp", o.tcp)
		if err != nil {
			return fmt.Errorf("cannot reach %s (%v); check that the node runs and has an MLLP device listening there", o.tcp, err)
		}
		defer c.Close()
		s.rw = c
	} else {
		c, err := serial.Open(serial.Tarm{}, o.to, o.baud, serial.Framing{DataBits: 8, Parity: "none", StopBits: 1})
		if err != nil {
			return fmt.Errorf("cannot open %s (%v); check the port name and that no other program holds it", o.to, err)
		}
		defer c.Close()
		s.rw = c
	}
	switch o.codec {
	case "hl7":
		s.client = mllp.NewClient(countingStream{s.rw, &s.written})
		s.client.ReplyTimeout = o.timeout
	case "astm":
		s.sender = astm.NewSender(countingStream{s.rw, &s.written})
		s.sender.ReplyTimeout = o.timeout
		defer s.sender.Close()
	}
	if !a.json {
		fmt.Fprintf(a.stdout, "Playing a %s device on %s.\n", map[string]string{"hl7": "HL7 monitor", "astm": "ASTM analyzer", "line": "line-printing scale"}[o.codec], where)
	}

	var latencies []time.Duration
	sum := simulateSummary{Codec: o.codec}
	start := time.Now()
	var firstErr error
	for i := 1; o.count == 0 || i <= o.count; i++ {
		if o.rate > 0 {
			due := start.Add(time.Duration(float64(i-1) / o.rate * float64(time.Second)))
			if err := sleepUntil(ctx, due); err != nil {
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		id, answer, refused, err := s.send(ctx, i)
		if ctx.Err() != nil {
			break
		}
		sum.Sent++
		took := time.Since(t0)
		switch {
		case err != nil:
			sum.Unanswered++
			if firstErr == nil {
				firstErr = err
			}
			answer = err.Error()
		case refused:
			sum.Refused++
		default:
			sum.Acknowledged++
			latencies = append(latencies, took)
		}
		if !a.json {
			fmt.Fprintf(a.stdout, "%s  %s  %s\n", id, answer, took.Round(100*time.Microsecond))
		}
		if errors.Is(err, mllp.ErrNoACK) || errors.Is(err, astm.ErrTimeout) || isBroken(err) {
			break // the line is down: more messages would only wait as long
		}
	}
	sum.Seconds = time.Since(start).Seconds()
	sum.Bytes = s.written
	if sum.Seconds > 0 {
		sum.PerSecond = float64(sum.Sent) / sum.Seconds
	}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		sum.P50ms = float64(latencies[len(latencies)/2]) / float64(time.Millisecond)
		sum.P99ms = float64(latencies[min(len(latencies)-1, len(latencies)*99/100)]) / float64(time.Millisecond)
	}
	if a.json {
		if err := a.printJSON(sum); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "Sent %d in %.1fs (%.1f/s, %d bytes", sum.Sent, sum.Seconds, sum.PerSecond, sum.Bytes)
		if o.to != "" {
			fmt.Fprintf(a.stdout, "; the line carries about %d bytes/s at %d baud", o.baud/10, o.baud)
		}
		fmt.Fprint(a.stdout, ")")
		if o.codec != "line" {
			fmt.Fprintf(a.stdout, ": %d acknowledged, %d refused, %d unanswered", sum.Acknowledged, sum.Refused, sum.Unanswered)
			if len(latencies) > 0 {
				fmt.Fprintf(a.stdout, "; acknowledgement after %.1f ms (median), %.1f ms (p99)", sum.P50ms, sum.P99ms)
			}
		}
		fmt.Fprintln(a.stdout, ".")
	}
	switch {
	case sum.Unanswered > 0:
		return fmt.Errorf("%d of %d messages were not acknowledged (%v); check the cable, the baud rate, and that the node has this device registered and running", sum.Unanswered, sum.Sent, firstErr)
	case sum.Refused > 0:
		return fmt.Errorf("the node refused %d of %d messages; 'healthpost device list' shows the device's last problem", sum.Refused, sum.Sent)
	}
	return nil
}

// send sends message i and returns its ID and the answer.
func (s *simulator) send(ctx context.Context, i int) (id, answer string, refused bool, err error) {
	now := time.Now()
	switch s.o.codec {
	case "hl7":
		id = fmt.Sprintf("SIM%s-%06d", s.run, i)
		rep, err := s.client.Send(ctx, simulatedORU(id, s.o.patient, now, i))
		if err != nil {
			return id, "", false, err
		}
		answer = string(rep.Code)
		if rep.Text != "" {
			answer += " " + rep.Text
		}
		return id, answer, rep.Code != hl7.AckAccept, nil
	case "astm":
		id = fmt.Sprintf("SIM%s-%06d", s.run, i)
		if err := s.sender.Send(ctx, simulatedASTM(id, s.o.patient, now, i)); err != nil {
			if errors.Is(err, astm.ErrRetryLimit) {
				return id, "NAK (refused " + strconv.Itoa(astm.DefaultMaxAttempts) + " times)", true, nil
			}
			return id, "", false, err
		}
		return id, "ACK", false, nil
	default:
		l := simulatedLine(i)
		n, err := s.rw.Write([]byte(l))
		s.written += int64(n)
		if err != nil {
			return strings.TrimSpace(l), "", false, err
		}
		return strings.TrimSpace(l), "sent", false, nil
	}
}

// simulatedORU is a blood-pressure monitor's ORU^R01 (IHE PCD-01 style,
// MDC codes), with made-up values that vary with i.
func simulatedORU(id, patient string, at time.Time, i int) []byte {
	ts := hl7.FormatTimestamp(at)
	var b strings.Builder
	b.WriteString("MSH|^~\\&|HPSIM^0012FFFE00000000^EUI-64||HEALTHPOST||" + ts + "||ORU^R01^ORU_R01|" + id + "|P|2.6|||NE|AL\r")
	if patient != "" {
		b.WriteString("PID|||" + patient + "^^^HEALTHPOST^MR\r")
	}
	b.WriteString("OBR|1|" + id + "||150020^MDC_PRESS_BLD_NONINV^MDC|||" + ts + "\r")
	fmt.Fprintf(&b, "OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.0.1.1|%d|266016^MDC_DIM_MMHG^MDC|||||R\r", 110+i%40)
	fmt.Fprintf(&b, "OBX|2|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.0.1.2|%d|266016^MDC_DIM_MMHG^MDC|||||R\r", 70+i%20)
	fmt.Fprintf(&b, "OBX|3|NM|149546^MDC_PULS_RATE_NON_INV^MDC|1.0.1.3|%d|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R\r", 60+i%30)
	return []byte(b.String())
}

// simulatedASTM is a glucose analyzer's message with LOINC test IDs, so a
// node stores it without a code table.
func simulatedASTM(id, patient string, at time.Time, i int) []string {
	ts := at.In(astmZone).Format("20060102150405")
	return []string{
		`H|\^&|||HPSIM^1.0|||||HEALTHPOST||P|LIS2-A2|` + ts,
		"P|1|" + patient,
		"O|1|" + id + "||^^^GLU|R||" + ts,
		fmt.Sprintf("R|1|2339-0^Glucose^LN|%d|mg/dL|70 to 140|N||F||||%s", 80+i%60, ts),
		fmt.Sprintf("R|2|718-7^Hemoglobin^LN|%.1f|g/dL|12.0 to 15.5|N||F||||%s", 11+float64(i%40)/10, ts),
		"L|1|N",
	}
}

// astmZone is the analyzer's clock: ASTM times carry no zone, and the node
// reads them as IST.
var astmZone = time.FixedZone("IST", 5*3600+30*60)

// simulatedLine is one weighing, different from the one before it.
func simulatedLine(i int) string {
	return fmt.Sprintf("WT: %.1f kg\r\n", 45+float64(i%300)/10)
}

// countingStream counts the bytes written, for the line-rate comparison.
type countingStream struct {
	mllp.Stream
	n *int64
}

func (c countingStream) Write(p []byte) (int, error) {
	n, err := c.Stream.Write(p)
	*c.n += int64(n)
	return n, err
}

// isBroken reports whether err means the connection is gone.
func isBroken(err error) bool {
	return errors.Is(err, serial.ErrUnplugged) || errors.Is(err, serial.ErrHungUp) ||
		errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE)
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
