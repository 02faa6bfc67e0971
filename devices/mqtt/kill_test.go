package mqtt_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/mqtt"
	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// The kill -9 test runs this test binary again as a child hosting a store and
// the embedded broker; it prints the broker's address and serves until killed.
const childEnv = "HPTEST_MQTT_BROKER_CHILD"

func brokerChild(path string) {
	s := edgetest.NewTestStore(path)
	if err := s.Open(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	logger := slog.New(slog.DiscardHandler)
	b := mqtt.NewBroker(s, devices.NewIngestor(s, logger), logger, edge.MQTTConfig{Listen: "127.0.0.1:0"}, testNode)
	if p, err := strconv.Atoi(os.Getenv("HPTEST_PIPELINE")); err == nil {
		b.Pipeline = p
	}
	if err := b.Open(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", b.Addr())
	select {} // until SIGKILL
}

func TestBroker_KillNineLosesNothingAcknowledged(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.NewTestStore(path)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := MustCreatePatient(t, s, "Sunita Devi")
	var devs []Device
	for i := range 8 {
		devs = append(devs, MustCreateDevice(t, s, fmt.Sprintf("BP monitor %d", i+1), "json", ""))
	}
	s.Close(context.Background())

	var mu sync.Mutex
	var acked []string
	for round, killAfter := range []int{300, 1500, 4000} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		// The first round commits inside mochi's hook, the others through
		// the pipeline.
		pipeline := mqtt.DefaultPipeline
		if round == 0 {
			pipeline = 1
		}
		cmd.Env = append(os.Environ(), childEnv+"="+path, fmt.Sprintf("HPTEST_PIPELINE=%d", pipeline))
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() {
			cmd.Process.Kill()
			t.Fatalf("round %d: child did not start", round)
		}
		addr, ok := strings.CutPrefix(sc.Text(), "listening ")
		if !ok {
			t.Fatalf("child said %q", sc.Text())
		}

		// Every device publishes at full rate with up to 20 QoS 1 publishes
		// in flight, and records a message ID only once its PUBACK arrived.
		stop := make(chan struct{})
		reached := make(chan struct{})
		var once sync.Once
		n := 0
		var wg sync.WaitGroup
		for di, d := range devs {
			c := MustPaho(t, addr, fmt.Sprintf("kill-%d-%s", round, d.ID), d)
			type inflight struct {
				id  string
				tok paho.Token
			}
			window := make(chan inflight, 20)
			wg.Add(2)
			go func() {
				defer wg.Done()
				defer close(window)
				for i := 0; ; i++ {
					id := fmt.Sprintf("r%d-d%d-%d", round, di, i)
					tok := c.Publish(mqtt.ReadingsTopic(testNode, d.Name), 1, false, Envelope(id, p.LocalID, "8480-6", "128", "mm[Hg]"))
					select {
					case window <- inflight{id, tok}:
					case <-stop:
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				for f := range window {
					<-f.tok.Done()
					if f.tok.Error() != nil {
						continue // never acknowledged
					}
					mu.Lock()
					acked = append(acked, f.id)
					n++
					if n >= killAfter {
						once.Do(func() { close(reached) })
					}
					mu.Unlock()
				}
			}()
		}
		<-reached
		// A real kill -9, mid-stream: the child gets no chance to flush or close.
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		close(stop)
		wg.Wait() // in-flight publishes end with "connection lost"
	}

	// Ensure every acknowledged reading is stored exactly once, with its
	// observation, and that the database and its audit chain are sound.
	s2 := edgetest.NewTestStore(path)
	if err := s2.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s2.Close(context.Background())
	if err := s2.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw := edgetest.MustRawDB(t, path)
	stored := map[string]int{}
	rows, err := raw.Query(`SELECT r.message_id FROM readings r JOIN observations o ON o.id = r.observation_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var m string
		rows.Scan(&m)
		stored[m]++
	}
	rows.Close()
	for _, id := range acked {
		if stored[id+"/1"] != 1 {
			t.Fatalf("acknowledged reading %s stored %d times", id, stored[id+"/1"])
		}
	}
	for m, c := range stored {
		if c != 1 {
			t.Fatalf("reading %s stored %d times", m, c)
		}
	}
	if rep, err := s2.VerifyAudit(context.Background()); err != nil || !rep.OK() {
		t.Fatalf("audit after kill -9: %+v %v", rep, err)
	}
	t.Logf("%d acknowledged readings over 3 kills; %d stored (the rest were in flight, not acknowledged)", len(acked), len(stored))
}
