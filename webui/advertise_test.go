package webui_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grandcat/zeroconf"

	"github.com/healthpost/healthpost/webui"
)

// mdnsNetnsEnv marks the child that runs TestAdvertiser inside a network
// namespace of its own.
const mdnsNetnsEnv = "HPTEST_MDNS_NETNS"

// TestAdvertiser announces the node with mDNS and finds it by browsing, as
// an Android service browser on the LAN would. mDNS is multicast, so the
// test runs itself again in a new network namespace (root, as under
// .ci/run) whose only link is a veth pair made for it: no packet leaves
// this machine.
func TestAdvertiser(t *testing.T) {
	if os.Getenv(mdnsNetnsEnv) == "" {
		cmd := exec.Command("unshare", "--net", "sh", "-c",
			`ip link add hp0 type veth peer name hp1 && ip addr add 10.99.0.1/24 dev hp0 && ip link set hp0 up && ip link set hp1 up && exec "$0" -test.run='^TestAdvertiser$' -test.v`, os.Args[0])
		cmd.Env = append(os.Environ(), mdnsNetnsEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestAdvertiser") {
			t.Fatalf("mDNS test in its own network namespace (needs root): %v\n%s", err, out)
		}
		return
	}
	link, err := net.InterfaceByName("hp0")
	if err != nil {
		t.Fatal(err)
	}
	ifaces := []net.Interface{*link}
	a := webui.NewAdvertiser(18080, slog.New(slog.DiscardHandler))
	a.Instance = "healthpost-test"
	a.Interfaces = ifaces
	if err := a.Open(context.Background()); err != nil {
		t.Fatalf("open: %v", err)
	}
	defer a.Close(context.Background())

	resolver, err := zeroconf.NewResolver(zeroconf.SelectIfaces(ifaces), zeroconf.SelectIPTraffic(zeroconf.IPv4))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	entries := make(chan *zeroconf.ServiceEntry)
	if err := resolver.Browse(ctx, webui.DefaultService, webui.DefaultDomain, entries); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case e := <-entries:
			if e == nil || e.Instance != a.Instance {
				continue
			}
			if e.Port != 18080 || !slices.Contains(e.Text, "path=/") {
				t.Fatalf("entry=%+v", e)
			}
			return
		case <-ctx.Done():
			t.Fatal("the announcement was not found")
		}
	}
}
