package webui

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/grandcat/zeroconf"

	"github.com/healthpost/healthpost/edge"
)

// Defaults of the mDNS/DNS-SD advertisement.
const (
	DefaultInstance = "healthpost"
	DefaultService  = "_http._tcp"
	DefaultDomain   = "local."
)

// Advertiser announces the web UI on the LAN with mDNS/DNS-SD, so tablets
// (and admins' laptops) find "healthpost" without typing an address. Not
// every Android resolves .local names, so serve also prints the address and
// a QR code of it (TerminalQR), and the admin page shows the same code.
type Advertiser struct {
	Instance string
	Service  string
	Domain   string
	Port     int
	// Text is the TXT record: path and version by default.
	Text []string
	// Interfaces limits the announcement; nil means every multicast interface.
	Interfaces []net.Interface
	Logger     *slog.Logger

	server *zeroconf.Server
}

// NewAdvertiser returns an advertiser of the web UI on port.
func NewAdvertiser(port int, logger *slog.Logger) *Advertiser {
	return &Advertiser{
		Instance: DefaultInstance, Service: DefaultService, Domain: DefaultDomain, Port: port,
		Text:   []string{"path=/", "version=" + edge.Version()},
		Logger: logger.With(edge.LogKeySubsystem, "mdns"),
	}
}

// Open starts answering mDNS queries.
func (a *Advertiser) Open(ctx context.Context) error {
	srv, err := zeroconf.Register(a.Instance, a.Service, a.Domain, a.Port, a.Text, a.Interfaces)
	if err != nil {
		return &edge.Error{Code: "mdns_failed", Message: fmt.Sprintf("cannot announce the web UI on the LAN (mDNS): %v", err),
			Hint: "tablets can still open the address printed at start or scan its QR code; check that the network interface is up and allows multicast", Err: err}
	}
	a.server = srv
	a.Logger.Info("announcing on the LAN", "instance", a.Instance, "service", a.Service, "port", a.Port)
	return nil
}

// Close withdraws the announcement.
func (a *Advertiser) Close(ctx context.Context) error {
	if a.server != nil {
		a.server.Shutdown()
		a.server = nil
	}
	return nil
}
