package webui_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/grandcat/zeroconf"

	"github.com/healthpost/healthpost/webui"
)

// TestAdvertiser announces the node with mDNS and finds it by browsing,
// as a laptop or an Android service browser on the LAN would. mDNS is
// link-local multicast (224.0.0.251, never routed); the test's instance
// name is unique so it finds its own announcement.
func TestAdvertiser(t *testing.T) {
	a := webui.NewAdvertiser(18080, slog.New(slog.DiscardHandler))
	a.Instance = "healthpost-test-" + time.Now().Format("150405.000")

	if err := a.Open(context.Background()); err != nil {
		t.Fatalf("open: %v", err)
	}
	defer a.Close(context.Background())

	resolver, err := zeroconf.NewResolver(nil)
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
			t.Fatal("the announcement was not found on the LAN")
		}
	}
}
