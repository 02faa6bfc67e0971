package syncq_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
	"github.com/healthpost/healthpost/syncq/synctest"
)

// nodeProcessEnv makes TestHelperNodeProcess run a delivering node.
const nodeProcessEnv = "HPTEST_SYNC_NODE"

// TestHelperNodeProcess is not a test: run with HPTEST_SYNC_NODE=DB|URL|TOKEN
// it opens the node's database, delivers its outbox to URL with the
// background engine and the node's real mapper, prints "drained" when
// nothing is pending and exits. The kill -9 test runs it as a child process
// and kills it mid-delivery.
func TestHelperNodeProcess(t *testing.T) {
	spec := os.Getenv(nodeProcessEnv)
	if spec == "" {
		return
	}
	f := strings.Split(spec, "|")
	s := edgetest.NewTestStore(f[0])
	ctx := context.Background()
	if err := s.Open(ctx); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	e := NewABDMEngine(t, s, f[1], f[2])
	if err := e.Open(ctx); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("started")
	for {
		ch := e.Changed()
		if _, err := s.NextOutboxDue(ctx); errors.Is(err, edge.ErrNotFound) {
			break
		}
		<-ch
	}
	e.Close(ctx)
	s.Close(ctx)
	fmt.Println("drained")
	os.Exit(0)
}

func TestEngine_KillNineDuplicatesNothing(t *testing.T) {
	t.Parallel()
	// Ensure that killing the delivering node with SIGKILL at random moments
	// (including between the hub storing a batch and the node recording the
	// answer), then starting it again, still delivers every document of a
	// real backlog, built by the node's mapper, exactly once and in
	// per-patient order. The figure is twenty kills during the
	// delivery of 10,000 encounters; HEALTHPOST_SYNC_LONG=1 runs it. By
	// default the twenty kills land in the delivery of 300 encounters
	// (about 920 documents), for the reason TestEngine_ExactlyOnceThroughFaults
	// gives: real documents cost some 25 ms of CPU each under -race, and
	// each restart of the node costs a second or two more there.
	backlog, kills := synctest.Backlog{Patients: 150, Encounters: 300}, 20
	if longRun() {
		backlog = synctest.Backlog{Patients: 2000, Encounters: 10000}
	}
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	docs := backlog.MustCopy(t, path).Documents
	h := MustOpenHub(t)
	p := MustProxy(t, h.URL, synctest.Faults{Rate: 0.3, RetryAfter: 3}, 3)

	rnd := rand.New(rand.NewPCG(42, uint64(time.Now().UnixNano())))
	var at []int64
	for range kills {
		at = append(at, 1+rnd.Int64N(int64(docs)-1))
	}
	slices.Sort(at)

	run := func(killAt int64) (killed bool) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNodeProcess$")
		cmd.Env = append(os.Environ(), nodeProcessEnv+"="+strings.Join([]string{path, p.URL, h.Token}, "|"))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		drained := false
		for !drained {
			arrived := h.Store.Arrived()
			n, err := h.Store.ArrivalCount(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if killAt > 0 && n >= killAt {
				// A real kill -9: no chance to record what the hub answered.
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				for range lines {
				}
				cmd.Wait()
				return true
			}
			select {
			case <-arrived:
			case line, ok := <-lines:
				if !ok {
					if err := cmd.Wait(); err != nil {
						t.Fatalf("node process: %v", err)
					}
					drained = true
				} else if strings.HasPrefix(line, "error") {
					t.Fatalf("node process: %s", line)
				}
			case <-ctx.Done():
				cmd.Process.Kill()
				t.Fatal("node process did not drain the outbox in time")
			}
		}
		return false
	}
	killed := 0
	for _, k := range at {
		if run(k) {
			killed++
		}
	}
	run(0)
	if killed < kills {
		t.Fatalf("only %d of %d kills landed before the outbox drained", killed, kills)
	}
	s2 := edgetest.MustOpenStoreAt(t, path)
	if err := s2.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rep, err := s2.VerifyAudit(context.Background()); err != nil || !rep.OK() {
		t.Fatalf("audit after kill -9: %+v %v", rep, err)
	}
	if got := MustVerifyABDMExactlyOnce(t, path, h.Store); got != docs {
		t.Fatalf("verified %d documents, the backlog has %d", got, docs)
	}
	t.Logf("%d documents, %d kills at arrivals %v; proxy: %s", docs, killed, at, p.CountsString())
}
