package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/mllp"
	"github.com/healthpost/healthpost/devices/mqtt"
	"github.com/healthpost/healthpost/devices/serial"
	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/webui"
)

// shutdownTimeout bounds a graceful stop; systemd's TimeoutStopSec is longer.
const shutdownTimeout = 20 * time.Second

func (a *app) serveCommand() *cobra.Command {
	var httpAddr, mqttAddr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the node: web UI and everything else, until stopped",
		Long: `Run the node until SIGINT or SIGTERM. On an empty data directory it creates
the database and the account 'admin', and prints that account's password once.
On stop it finishes what is in flight: every device reading handed to the
database is committed before the process exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var extra []edge.FlagValue
			if cmd.Flags().Changed("http") {
				extra = append(extra, edge.FlagValue{Key: "http.listen", Flag: "http", Value: httpAddr})
			}
			if cmd.Flags().Changed("mqtt") {
				extra = append(extra, edge.FlagValue{Key: "mqtt.listen", Flag: "mqtt", Value: mqttAddr})
			}
			cfg, err := a.loadConfig(cmd, extra...)
			if err != nil {
				return err
			}
			return a.serve(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http", webui.DefaultAddr, "address for the web UI (env HEALTHPOST_HTTP_LISTEN)")
	cmd.Flags().StringVar(&mqttAddr, "mqtt", mqtt.DefaultListen, "address of the embedded MQTT broker; empty turns it off (env HEALTHPOST_MQTT_LISTEN)")
	return cmd
}

func (a *app) serve(ctx context.Context, cfg *edge.Config) error {
	logger := cfg.NewLogger(a.stderr)
	node := edge.NewNode(cfg, logger)
	if err := node.Open(ctx); err != nil {
		return err
	}
	if err := a.addDevices(ctx, node); err != nil {
		node.Close(context.Background())
		return err
	}
	engine, err := a.syncEngine(ctx, node, logger)
	if err != nil {
		node.Close(context.Background())
		return err
	}
	web := webui.NewServer(node.Store, logger)
	web.Addr = cfg.HTTP.Listen
	if engine != nil {
		web.Sync = webSync{engine}
	}
	if err := node.Add(ctx, web); err != nil {
		node.Close(context.Background())
		return err
	}

	if node.FirstAdminPassword != "" {
		fmt.Fprintf(a.stdout, "\nFirst start: created the account 'admin' with password\n\n    %s\n\n"+
			"Write it down now: it is shown only once. Change it with 'healthpost user passwd admin'.\n\n",
			node.FirstAdminPassword)
	}
	if cfg.HTTP.MDNS {
		// Tablets can always use the printed address; a LAN without
		// multicast only loses the announcement.
		if err := node.Add(ctx, webui.NewAdvertiser(web.Port(), logger)); err != nil {
			logger.Warn("not announcing the web UI on the LAN", "err", err)
		}
	}
	urls := webui.LANURLs(web.Port())
	for _, u := range urls {
		fmt.Fprintf(a.stdout, "Open %s on a tablet on this network.\n", u)
	}
	if len(urls) > 0 {
		if qr, err := webui.TerminalQR(urls[0]); err == nil {
			fmt.Fprintf(a.stdout, "Or scan this with the tablet's camera:\n%s\n", qr)
		}
	}
	fmt.Fprintf(a.stdout, "listening on %s\n", web.URL())
	logger.Info("node started", "version", edge.Version(), "data_dir", cfg.DataDir, "http", web.URL())
	sd := newSDNotifier(a.env, os.Getpid(), logger)
	sd.ready("serving on " + web.URL())
	stopWatchdog := sd.startWatchdog(ctx, node.Store.Ping)

	<-ctx.Done()
	sd.stopping()
	stopWatchdog()
	logger.Info("stopping")
	stopCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := node.Close(stopCtx); err != nil {
		return fmt.Errorf("stop node: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// addDevices starts device ingestion: serial ports, HL7 over MLLP listeners
// and MQTT (the embedded broker, or a subscription to an external one). They
// are added before the web UI and so closed after it, and before the store
// closes, so every reading they handed in is committed.
func (a *app) addDevices(ctx context.Context, node *edge.Node) error {
	logger := node.Logger
	in := devices.NewIngestor(node.Store, logger)
	ports := serial.NewPorts(node.Store, in, logger) // flushes the shared Ingestor's counters
	listeners := mllp.NewServer(node.Store, in, logger)
	listeners.FlushInterval = 0
	subs := []edge.Subsystem{ports, listeners}
	nodeID, err := node.Store.NodeID(ctx)
	if err != nil {
		return fmt.Errorf("read node ID: %w", err)
	}
	if broker := mqtt.New(node.Store, in, logger, node.Config.MQTT, nodeID); broker != nil {
		subs = append(subs, broker)
	}
	for _, sub := range subs {
		if err := node.Add(ctx, sub); err != nil {
			return err
		}
	}
	return nil
}
