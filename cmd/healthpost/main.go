// Command healthpost is the healthpost node: one binary for serving the
// health centre's web UI and devices, and for the operator's chores (users,
// backups, health checks). Its commands only parse flags and call packages.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/edge"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand(os.Stdout, os.Stderr, os.Stdin, os.Environ()).ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(os.Stderr, err))
}

// exitError carries the exit code a command wants; 1 is any failure, 2 a
// usage mistake, 3 an unhealthy doctor or a broken audit chain.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// usageError is a missing or wrong argument, with the command line that fixes it.
func usageError(problem, try string) error {
	return &exitError{code: 2, err: fmt.Errorf("%s\nTry: %s", problem, try)}
}

func exitCode(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "Error: %s\n", msg)
	}
	return code
}

// app holds what every command shares: its streams, environment and the
// global flags.
type app struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	env            []string

	configPath string
	dataDir    string
	json       bool
}

func newRootCommand(stdout, stderr io.Writer, stdin io.Reader, env []string) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr, stdin: stdin, env: env}
	root := &cobra.Command{
		Use:   "healthpost",
		Short: "The health centre's edge node: patients, encounters, devices, sync",
		Long: `healthpost runs a primary health centre's records on one small computer.

Health workers use the web UI from tablets on the centre's Wi-Fi; medical
devices send readings over serial cables and MQTT; everything is saved in one
SQLite file first, so the centre works offline for weeks, and records are sent
on to the district when a link is there.

Start the node with 'healthpost serve'. On the first start it creates the
account 'admin' and prints its password once.

Files:
  /etc/healthpost/healthpost.toml   configuration (installed), or ./healthpost.toml
  /var/lib/healthpost               data directory (installed), or ./healthpost-data
Every config key can be set with an environment variable HEALTHPOST_<KEY>,
for example HEALTHPOST_DATA_DIR or HEALTHPOST_HTTP_LISTEN; flags win over both.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetIn(stdin)
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "config file (default /etc/healthpost/healthpost.toml when installed, else ./healthpost.toml if present)")
	pf.StringVar(&a.dataDir, "data-dir", "", "data directory (env HEALTHPOST_DATA_DIR; default /var/lib/healthpost when installed, else ./healthpost-data)")
	pf.BoolVar(&a.json, "json", false, "print machine-readable JSON")

	root.AddCommand(
		a.serveCommand(),
		a.versionCommand(),
		a.migrateCommand(),
		a.userCommand(),
		a.backupCommand(),
		a.restoreCommand(),
		a.doctorCommand(),
		a.auditCommand(),
		a.configCommand(),
		a.deviceCommand(),
		a.syncCommand(),
		a.hubCommand(),
		a.exportCommand(),
		a.importCommand(),
		a.pushCommand(),
		a.benchCommand(),
	)
	return root
}

// loadConfig builds the effective config from defaults, file, environment and
// the flags given on cmd.
func (a *app) loadConfig(cmd *cobra.Command, extra ...edge.FlagValue) (*edge.Config, error) {
	var flags []edge.FlagValue
	if cmd.Flags().Changed("data-dir") {
		flags = append(flags, edge.FlagValue{Key: "data_dir", Flag: "data-dir", Value: a.dataDir})
	}
	flags = append(flags, extra...)
	return edge.LoadConfig(edge.LoadOptions{Path: a.configPath, Env: a.env, Flags: flags})
}

// openStore opens the database of the configured data directory for a
// one-off command. It may run while `serve` runs: SQLite arbitrates.
func (a *app) openStore(ctx context.Context, cfg *edge.Config) (*edge.Store, error) {
	s := edge.NewStore(cfg.DBPath())
	s.DiskCheckPeriod = 0
	s.LowFreeBytes = cfg.Storage.LowFreeMB << 20
	s.CriticalFreeBytes = cfg.Storage.CriticalFreeMB << 20
	s.RawKeepDays = cfg.Storage.RawKeepDays
	if err := s.Open(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// withStore loads the config, opens the store for a one-off command, runs fn
// with the operator as the audited actor, and closes the store.
func (a *app) withStore(cmd *cobra.Command, fn func(ctx context.Context, cfg *edge.Config, s *edge.Store) error) error {
	cfg, err := a.loadConfig(cmd)
	if err != nil {
		return err
	}
	ctx := operator(cmd.Context())
	s, err := a.openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close(ctx)
	return fn(ctx, cfg, s)
}

// operator is the actor of CLI commands in the audit log.
func operator(ctx context.Context) context.Context {
	return edge.WithActor(ctx, edge.Actor{Kind: edge.ActorSystem, ID: "cli"})
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
