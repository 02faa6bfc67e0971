package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq/exportfile"
	"github.com/healthpost/healthpost/syncq/hub"
)

// hubOptions are the flags every hub command shares.
type hubOptions struct {
	db string
}

// path is the hub's database file: --db, or hub.db in the data directory.
func (o *hubOptions) path(cfg *edge.Config) string {
	if o.db != "" {
		return o.db
	}
	return filepath.Join(cfg.DataDir, "hub", "hub.db")
}

// openHubStore opens the hub's database for a command.
func (a *app) openHubStore(cmd *cobra.Command, o *hubOptions) (*hub.Store, *edge.Config, error) {
	cfg, err := a.loadConfig(cmd)
	if err != nil {
		return nil, nil, err
	}
	st := hub.NewStore(o.path(cfg))
	if err := st.Open(cmd.Context()); err != nil {
		return nil, nil, err
	}
	return st, cfg, nil
}

func (a *app) hubCommand() *cobra.Command {
	o := &hubOptions{}
	srvOpts := struct {
		listen, base, cert, key, clientCA string
		maxBodyMB, maxExportMB            int64
		anonymous                         bool
		inbox                             string
		inboxInterval                     time.Duration
	}{}
	cmd := &cobra.Command{
		Use:   "hub",
		Short: "Run the district hub: the FHIR server health centre nodes deliver to",
		Long: `Run the district hub until SIGINT or SIGTERM: a FHIR R4 server for the
document Bundles health centre nodes deliver, stored in its own SQLite file
(--db). Each node needs a token: 'healthpost hub token add NODE' prints one
to put in that node's upstream.token. Serve it over HTTPS (--tls-cert,
--tls-key), or behind a TLS proxy; with --client-ca a node may instead
present a certificate whose CommonName is its name.

A node's upstream.url is this hub's base URL, e.g. https://hub.district.example/fhir.

Health centres without a link send USB export files ('healthpost export'):
the hub takes them by upload ('healthpost push', POST [base]/$export-file)
and, with --inbox DIR, from that directory, writing FILE.receipt.json beside
each. Nodes need the hub's keys ('healthpost hub key'), and the hub each
node's signing key ('healthpost hub token signing-key NODE KEY').`,
		Example: `  healthpost hub token add phc-rampur
  healthpost hub --listen :8443 --tls-cert /etc/healthpost/hub.crt --tls-key /etc/healthpost/hub.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, cfg, err := a.openHubStore(cmd, o)
			if err != nil {
				return err
			}
			defer st.Close()
			logger := cfg.NewLogger(a.stderr)
			srv := hub.NewServer(st)
			srv.Addr, srv.BasePath, srv.Logger = srvOpts.listen, srvOpts.base, logger
			srv.MaxBodyBytes = srvOpts.maxBodyMB << 20
			srv.AllowAnonymous = srvOpts.anonymous
			keys, err := hub.LoadOrCreateKeys(filepath.Dir(st.Path))
			if err != nil {
				return err
			}
			exports := &hub.Exports{Store: st, Keys: keys, Logger: logger}
			srv.Exports, srv.MaxExportBytes = exports, srvOpts.maxExportMB<<20
			if (srvOpts.cert == "") != (srvOpts.key == "") {
				return usageError("--tls-cert and --tls-key go together", "healthpost hub --tls-cert hub.crt --tls-key hub.key")
			}
			if srvOpts.cert != "" {
				c, err := tls.LoadX509KeyPair(srvOpts.cert, srvOpts.key)
				if err != nil {
					return fmt.Errorf("load --tls-cert and --tls-key: %w", err)
				}
				srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}
			}
			if srvOpts.clientCA != "" {
				if srv.TLSConfig == nil {
					return usageError("--client-ca needs --tls-cert and --tls-key", "healthpost hub --tls-cert hub.crt --tls-key hub.key --client-ca nodes-ca.pem")
				}
				pem, err := os.ReadFile(srvOpts.clientCA)
				if err != nil {
					return fmt.Errorf("read --client-ca: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return fmt.Errorf("--client-ca %s holds no PEM certificate", srvOpts.clientCA)
				}
				srv.TLSConfig.ClientCAs, srv.TLSConfig.ClientAuth = pool, tls.VerifyClientCertIfGiven
			}
			ctx := cmd.Context()
			if err := srv.Open(ctx); err != nil {
				return err
			}
			if srvOpts.anonymous {
				logger.Warn("the hub accepts documents without credentials (--allow-anonymous): for demonstrations only")
			}
			nodes, err := st.Nodes(ctx)
			if err != nil {
				srv.Close(context.Background())
				return err
			}
			if len(nodes) == 0 && !srvOpts.anonymous {
				fmt.Fprintln(a.stdout, "No node may deliver yet: add one with 'healthpost hub token add NODE'.")
			}
			if srvOpts.inbox != "" {
				in := &hub.Inbox{Dir: srvOpts.inbox, Exports: exports, Interval: srvOpts.inboxInterval, Logger: logger,
					MaxBytes: srvOpts.maxExportMB << 20}
				if err := in.Open(ctx); err != nil {
					srv.Close(context.Background())
					return err
				}
				defer in.Close(context.Background())
				fmt.Fprintf(a.stdout, "USB export files dropped into %s are taken every %v.\n", srvOpts.inbox, srvOpts.inboxInterval)
			}
			fmt.Fprintf(a.stdout, "USB export files: nodes set upstream.export_key = %q and upstream.receipt_key = %q.\n",
				keys.ExportKey(), keys.ReceiptKey())
			fmt.Fprintf(a.stdout, "hub listening on %s\n", srv.URL())
			logger.Info("hub started", "version", edge.Version(), "db", st.Path, "url", srv.URL())
			<-ctx.Done()
			stopCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			if err := srv.Close(stopCtx); err != nil {
				return fmt.Errorf("stop hub: %w", err)
			}
			logger.Info("hub stopped")
			return nil
		},
	}
	f := cmd.PersistentFlags()
	f.StringVar(&o.db, "db", "", "the hub's database file (default DATA_DIR/hub/hub.db)")
	lf := cmd.Flags()
	lf.StringVar(&srvOpts.listen, "listen", hub.DefaultAddr, "address to listen on")
	lf.StringVar(&srvOpts.base, "base-path", hub.DefaultBasePath, "FHIR base path")
	lf.StringVar(&srvOpts.cert, "tls-cert", "", "TLS certificate (PEM) to serve HTTPS")
	lf.StringVar(&srvOpts.key, "tls-key", "", "private key (PEM) of --tls-cert")
	lf.StringVar(&srvOpts.clientCA, "client-ca", "", "CA (PEM) whose client certificates authenticate nodes by CommonName")
	lf.Int64Var(&srvOpts.maxBodyMB, "max-body-mb", hub.DefaultMaxBodyBytes>>20, "largest request body accepted, in MB after decompression")
	lf.BoolVar(&srvOpts.anonymous, "allow-anonymous", false, "accept documents without credentials (demonstrations only)")
	lf.StringVar(&srvOpts.inbox, "inbox", "", "directory to take USB export files from (a receipt is written beside each)")
	lf.DurationVar(&srvOpts.inboxInterval, "inbox-interval", hub.DefaultInboxInterval, "how often --inbox is scanned")
	lf.Int64Var(&srvOpts.maxExportMB, "max-export-mb", hub.DefaultMaxExportBytes>>20, "largest USB export file accepted, in MB")
	cmd.AddCommand(a.hubTokenCommand(o), a.hubKeyCommand(o))
	return cmd
}

func (a *app) hubTokenCommand(o *hubOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Issue, list and revoke the tokens nodes deliver with"}
	cmd.AddCommand(&cobra.Command{
		Use:     "add NODE",
		Short:   "Register a node, or give it a new token (the old one stops working), and print the token once",
		Example: "  healthpost hub token add phc-rampur",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("node name required", "healthpost hub token add phc-rampur")
			}
			st, _, err := a.openHubStore(cmd, o)
			if err != nil {
				return err
			}
			defer st.Close()
			tok, err := st.AddNode(cmd.Context(), args[0])
			if errors.Is(err, hub.ErrBadNodeName) {
				return usageError(fmt.Sprintf("%q: %v", args[0], err), "healthpost hub token add phc-rampur")
			}
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]string{"node": args[0], "token": tok})
			}
			fmt.Fprintf(a.stdout, "Token for %s:\n\n    %s\n\nIt is shown only now. On the node, set upstream.token to it (HEALTHPOST_UPSTREAM_TOKEN).\n", args[0], tok)
			return nil
		},
	}, &cobra.Command{
		Use:   "list",
		Short: "List the registered nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := a.openHubStore(cmd, o)
			if err != nil {
				return err
			}
			defer st.Close()
			nodes, err := st.Nodes(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				if nodes == nil {
					nodes = []hub.Node{}
				}
				return a.printJSON(nodes)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tADDED\tSTATUS\tEXPORT SIGNING KEY")
			for _, n := range nodes {
				status := "active"
				if !n.RevokedAt.IsZero() {
					status = "revoked " + n.RevokedAt.Local().Format("02 Jan 2006")
				} else if !n.HasToken {
					status = "active, no token"
				}
				key := n.SigningKey
				if key == "" {
					key = "none"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.Name, n.CreatedAt.Local().Format("02 Jan 2006"), status, key)
			}
			return tw.Flush()
		},
	}, &cobra.Command{
		Use:   "signing-key NODE KEY",
		Short: "Register the key NODE signs its USB export files with ('healthpost export key' prints it on the node)",
		Long: `Register the key a node signs its USB export files with; the hub takes a
file only when it is signed by a registered key. A node that only ever sends
sticks is registered by this alone, without a token. Registering a new key
replaces the old one.`,
		Example: "  healthpost hub token signing-key phc-rampur KEY",
		RunE: func(cmd *cobra.Command, args []string) error {
			example := "healthpost hub token signing-key phc-rampur KEY   (the node prints KEY with 'healthpost export key')"
			if len(args) != 2 {
				return usageError("node name and key required", example)
			}
			pub, err := exportfile.ParsePublicKey(args[1])
			if err != nil {
				return usageError(err.Error(), example)
			}
			st, _, err := a.openHubStore(cmd, o)
			if err != nil {
				return err
			}
			defer st.Close()
			err = st.SetSigningKey(cmd.Context(), args[0], pub)
			if errors.Is(err, hub.ErrBadNodeName) {
				return usageError(fmt.Sprintf("%q: %v", args[0], err), example)
			}
			if err != nil {
				return err
			}
			fp := exportfile.Fingerprint(pub)
			if a.json {
				return a.printJSON(map[string]string{"node": args[0], "signing_key": fp})
			}
			fmt.Fprintf(a.stdout, "%s's USB export files are taken when signed by key %s.\n", args[0], fp)
			return nil
		},
	}, &cobra.Command{
		Use:     "revoke NODE",
		Short:   "Stop accepting a node's token and certificate",
		Example: "  healthpost hub token revoke phc-rampur",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("node name required", "healthpost hub token revoke phc-rampur")
			}
			st, _, err := a.openHubStore(cmd, o)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.RevokeNode(cmd.Context(), args[0]); errors.Is(err, hub.ErrNotFound) {
				return fmt.Errorf("no active node %q; 'healthpost hub token list' shows them", args[0])
			} else if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]string{"revoked": args[0]})
			}
			fmt.Fprintf(a.stdout, "%s can no longer deliver; 'healthpost hub token add %s' issues a new token.\n", args[0], args[0])
			return nil
		},
	})
	return cmd
}

func (a *app) hubKeyCommand(o *hubOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "key",
		Short: "Print the hub's keys for USB export files, for the nodes' config (made on first use)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			dir := filepath.Dir(o.path(cfg))
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return fmt.Errorf("create hub data directory: %w", err)
			}
			keys, err := hub.LoadOrCreateKeys(dir)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]string{"export_key": keys.ExportKey(), "receipt_key": keys.ReceiptKey()})
			}
			fmt.Fprintf(a.stdout, `Nodes that send USB export files to this hub need, in the [upstream] section
of their healthpost.toml:

    export_key = %q
    receipt_key = %q

Export files are encrypted to the first key; the hub signs receipts with the
second. Back up %s and %s in %s
and keep them secret: without them the hub cannot read files on their way.
`, keys.ExportKey(), keys.ReceiptKey(), hub.ExportKeyFile, hub.ReceiptKeyFile, dir)
			return nil
		},
	}
}
