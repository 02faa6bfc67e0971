package mqtt_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/healthpost/healthpost/devices/mqtt"
	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// Load shape of the MQTT benchmarks: 50 devices on loopback, each with up to
// 20 QoS 1 publishes in flight.
const (
	benchDevices = 50
	benchWindow  = 20
)

// loadResult is what one run of the load measured.
type loadResult struct {
	n       int
	elapsed time.Duration
	lat     []time.Duration
}

func (r loadResult) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

func (r loadResult) pct(p float64) time.Duration {
	slices.Sort(r.lat)
	return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))]
}

// benchPayload is one BP reading whose message_id carries the client, the
// sequence number and the send time, so that a receiver can time it.
func benchPayload(c, i int, patient string) []byte {
	id := fmt.Sprintf("b-%d-%d-%d", c, i, time.Now().UnixNano())
	return Envelope(id, patient, "8480-6", strconv.Itoa(100+i%60), "mm[Hg]")
}

// sentAt reads the send time out of a bench payload's message_id.
func sentAt(payload []byte) time.Time {
	s := string(payload)
	i := strings.Index(s, `"message_id":"b-`)
	if i < 0 {
		return time.Time{}
	}
	id := s[i+len(`"message_id":"`):]
	id = id[:strings.IndexByte(id, '"')]
	ns, _ := strconv.ParseInt(id[strings.LastIndexByte(id, '-')+1:], 10, 64)
	return time.Unix(0, ns)
}

// publishLoad makes each client publish per messages to its topic, keeping
// up to benchWindow in flight, and calls acked with each publish's
// round-trip time once its PUBACK arrived. The same code drives both the
// embedded broker and mosquitto.
func publishLoad(tb testing.TB, clients []paho.Client, topics []string, per int, patient string, acked func(time.Duration)) {
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			type inflight struct {
				tok paho.Token
				at  time.Time
			}
			window := make(chan inflight, benchWindow)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for f := range window {
					<-f.tok.Done()
					if err := f.tok.Error(); err != nil {
						tb.Error(err)
						continue
					}
					acked(time.Since(f.at))
				}
			}()
			for i := range per {
				at := time.Now()
				window <- inflight{clients[c].Publish(topics[c], 1, false, benchPayload(c, i, patient)), at}
			}
			close(window)
			<-done
		}()
	}
	wg.Wait()
}

// BenchmarkMQTTIngest measures readings/s and publish→PUBACK latency through
// the embedded broker storing every reading durably (group commit, one fsync
// per batch), with the acknowledgement pipeline (the default) and with
// commits inside mochi's hook (Pipeline 1); and, in the same run with the
// same load code, publish→arrival through Debian's mosquitto to one QoS 1
// subscriber that stores nothing. "patient": each reading names a patient, so
// it becomes an observation with its outbox row, and is audited; "inbox":
// none, it waits in the unassigned inbox. b.N is the number of readings per
// leg; run with -benchtime=20000x. The CPU each leg used is reported too:
// the machine is shared by the load tool and the broker in both.
func BenchmarkMQTTIngest(b *testing.B) {
	for _, c := range []struct {
		name    string
		patient bool
	}{{"patient", true}, {"inbox", false}} {
		b.Run(c.name, func(b *testing.B) {
			per := max(1, b.N/benchDevices)
			total := per * benchDevices
			var topics []string
			for i := range benchDevices {
				topics = append(topics, mqtt.ReadingsTopic(testNode, fmt.Sprintf("BP monitor %d", i+1)))
			}

			// mosquitto, one QoS 1 subscriber that only notes the arrival time.
			m := MustStartMosquitto(b)
			mos := loadResult{n: total}
			var mu sync.Mutex
			var arrived atomic.Int64
			all := make(chan struct{})
			sub := MustPaho(b, m.Addr, "bench-sub", Device{Device: edge.Device{Name: "sub"}})
			MustWait(b, sub.Subscribe(mqtt.ReadingsFilter(testNode), 1, func(_ paho.Client, msg paho.Message) {
				d := time.Since(sentAt(msg.Payload()))
				mu.Lock()
				mos.lat = append(mos.lat, d)
				mu.Unlock()
				if arrived.Add(1) == int64(total) {
					close(all)
				}
			}))
			var clients []paho.Client
			for i := range benchDevices {
				clients = append(clients, MustPaho(b, m.Addr, fmt.Sprintf("bench-m-%d", i), Device{Device: edge.Device{Name: "dev"}}))
			}
			ref := "" // the payload the embedded legs get: the first patient's local ID, or none
			if c.patient {
				ref = "P-000001"
			}
			b.ResetTimer()
			cpu0, mcpu0 := cpuTime(b), procCPUTime(b, m.cmd.Process.Pid)
			start := time.Now()
			publishLoad(b, clients, topics, per, ref, func(time.Duration) {})
			<-all
			mos.elapsed = time.Since(start)
			cpu, mcpu := cpuTime(b)-cpu0, procCPUTime(b, m.cmd.Process.Pid)-mcpu0
			for _, c := range clients {
				c.Disconnect(0)
			}
			m.Stop()
			b.ReportMetric(mos.rate(), "mosquitto_msgs/s")
			b.ReportMetric(ms(mos.pct(0.50)), "mosquitto_p50_ms")
			b.ReportMetric(ms(mos.pct(0.99)), "mosquitto_p99_ms")
			// Who was busy: mosquitto itself (one thread, so at most 1),
			// and this process, which is only the load tool here (the
			// publishers and the subscriber).
			b.ReportMetric(mcpu.Seconds()/mos.elapsed.Seconds(), "mosquitto_cpu_cores")
			b.ReportMetric(cpu.Seconds()/mos.elapsed.Seconds(), "mosquitto_loadtool_cpu_cores")

			for _, leg := range []struct {
				name     string
				pipeline int
			}{{"pipelined", mqtt.DefaultPipeline}, {"in_hook", 1}} {
				emb, fsyncs, cpu := embeddedLeg(b, leg.pipeline, per, c.patient)
				b.ReportMetric(emb.rate(), leg.name+"_readings/s")
				b.ReportMetric(ms(emb.pct(0.50)), leg.name+"_p50_ms")
				b.ReportMetric(ms(emb.pct(0.99)), leg.name+"_p99_ms")
				b.ReportMetric(fsyncs, leg.name+"_fsyncs/s")
				b.ReportMetric(emb.rate()/mos.rate(), leg.name+"_ratio")
				// This process: the same load tool plus the broker and the store.
				b.ReportMetric(cpu.Seconds()/emb.elapsed.Seconds(), leg.name+"_cpu_cores")
				b.ReportMetric(float64(cpu.Microseconds())/float64(emb.n), leg.name+"_cpu_us/reading")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// embeddedLeg runs the load through a new store and embedded broker and
// returns what it measured, the commits per second (each commit is one
// fsync of the WAL; a checkpoint, every 1000 WAL pages, adds two more: under
// strace, 40,000 readings bound to a patient made 89 commits and 161 fsyncs)
// and the CPU time this process used meanwhile.
func embeddedLeg(b *testing.B, pipeline, per int, withPatient bool) (loadResult, float64, time.Duration) {
	n := MustOpenNode(b)
	pat := MustCreatePatient(b, n.Store, "Sunita Devi")
	ref := ""
	if withPatient {
		ref = pat.LocalID
	}
	br := MustOpenBroker(b, n, func(br *mqtt.Broker) { br.Pipeline = pipeline })
	var clients []paho.Client
	var topics []string
	for i := range benchDevices {
		d := MustCreateDevice(b, n.Store, fmt.Sprintf("BP monitor %d", i+1), "json", "")
		clients = append(clients, MustPaho(b, br.Addr(), fmt.Sprintf("bench-%d", i), d))
		topics = append(topics, mqtt.ReadingsTopic(testNode, d.Name))
	}
	var mu sync.Mutex
	emb := loadResult{n: per * benchDevices}
	stats0 := n.Store.IngestStats()
	cpu0 := cpuTime(b)
	start := time.Now()
	publishLoad(b, clients, topics, per, ref, func(d time.Duration) {
		mu.Lock()
		emb.lat = append(emb.lat, d)
		mu.Unlock()
	})
	emb.elapsed = time.Since(start)
	cpu := cpuTime(b) - cpu0
	batches := n.Store.IngestStats().Batches - stats0.Batches
	if got := edgetest.MustCount(b, n.Raw, `SELECT count(*) FROM readings WHERE message_id LIKE 'b-%'`); got != emb.n {
		b.Fatalf("stored %d of %d", got, emb.n)
	}
	for _, c := range clients {
		c.Disconnect(0)
	}
	br.Close(context.Background())
	return emb, float64(batches) / emb.elapsed.Seconds(), cpu
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPUTime is the CPU time (user and system) process pid has used, from
// /proc/<pid>/stat, in clock ticks of 10 ms (USER_HZ is 100 on Linux).
func procCPUTime(tb testing.TB, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// The command name, in parentheses, may hold spaces: count fields after it.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// BenchmarkBrokerMemory measures, once, the resident memory of a process hosting a
// store and the embedded broker (the child of the kill -9 test): idle, with
// 50 devices connected, and after each of them sent 20 readings at full rate.
func BenchmarkBrokerMemory(b *testing.B) {
	// One measurement whatever b.N (a -benchtime=20000x meant for
	// BenchmarkMQTTIngest must not start 20000 children).
	for range 1 {
		path := filepath.Join(b.TempDir(), edge.DBFileName)
		s := edgetest.NewTestStore(path)
		if err := s.Open(context.Background()); err != nil {
			b.Fatal(err)
		}
		pat := MustCreatePatient(b, s, "Sunita Devi")
		var devs []Device
		for i := range benchDevices {
			devs = append(devs, MustCreateDevice(b, s, fmt.Sprintf("BP monitor %d", i+1), "json", ""))
		}
		s.Close(context.Background())

		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		sc := bufio.NewScanner(stdout)
		sc.Scan()
		addr, _ := strings.CutPrefix(sc.Text(), "listening ")
		idle := rssMB(b, cmd.Process.Pid)

		var clients []paho.Client
		var topics []string
		for i, d := range devs {
			clients = append(clients, MustPaho(b, addr, fmt.Sprintf("mem-%d", i), d))
			topics = append(topics, mqtt.ReadingsTopic(testNode, d.Name))
		}
		connected := rssMB(b, cmd.Process.Pid)
		publishLoad(b, clients, topics, 20, pat.LocalID, func(time.Duration) {})
		b.ReportMetric(idle, "idle_rss_MB")
		b.ReportMetric(connected, "rss_50_connected_MB")
		b.ReportMetric(rssMB(b, cmd.Process.Pid), "rss_50_devices_MB")
	}
	b.ReportMetric(0, "ns/op")
}

// rssMB reads a process's resident set size from /proc.
func rssMB(tb testing.TB, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// BenchmarkPubackLatency measures publish→PUBACK of one device sending one
// reading at a time (no queueing): the group-commit delay plus one commit.
func BenchmarkPubackLatency(b *testing.B) {
	n := MustOpenNode(b)
	pat := MustCreatePatient(b, n.Store, "Sunita Devi")
	br := MustOpenBroker(b, n)
	d := MustCreateDevice(b, n.Store, "BP monitor 1", "json", "")
	c := MustPaho(b, br.Addr(), "lat", d)
	topic := mqtt.ReadingsTopic(testNode, d.Name)
	var r loadResult
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		MustWait(b, c.Publish(topic, 1, false, benchPayload(0, i, pat.LocalID)))
		r.lat = append(r.lat, time.Since(start))
	}
	b.ReportMetric(ms(r.pct(0.50)), "p50_ms")
	b.ReportMetric(ms(r.pct(0.99)), "p99_ms")
}
