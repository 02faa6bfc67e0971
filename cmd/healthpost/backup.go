package main

import (
	"fmt"
	"path/filepath"

	"github.com/healthpost/healthpost/edge"
	"github.com/spf13/cobra"
)

func (a *app) backupCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Copy the database to FILE while the node keeps running, and check the copy",
		Long: `Copy the database to FILE, consistent as of one moment, while the node keeps
serving. The copy is checked (SQLite integrity_check) before it is given its
name, so a file at FILE is always a good backup.`,
		Example: "  healthpost backup /media/usb/healthpost-2026-11-22.db",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("backup file required", "healthpost backup /media/usb/healthpost-backup.db")
			}
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			ctx := operator(cmd.Context())
			shown := false
			progress := func(done, total int64) {
				if a.json || total < 8<<20 {
					return
				}
				shown = true
				fmt.Fprintf(a.stderr, "\rbacking up: %3d%% (%d of %d MB)", done*100/max(total, 1), done>>20, total>>20)
			}
			// A database of an earlier schema (this binary is an upgrade not
			// yet started) is copied as it is: a backup never migrates.
			version, err := edge.DatabaseFileVersion(ctx, cfg.DBPath())
			if err != nil {
				return err
			}
			current := version == edge.SchemaVersion()
			if current {
				s, openErr := a.openStore(ctx, cfg)
				if openErr != nil {
					return openErr
				}
				defer s.Close(ctx)
				err = s.Backup(ctx, args[0], progress)
			} else {
				err = edge.BackupFile(ctx, cfg.DBPath(), args[0], progress)
			}
			if err != nil {
				return err
			}
			if shown {
				fmt.Fprintln(a.stderr)
			}
			abs, _ := filepath.Abs(args[0])
			if a.json {
				return a.printJSON(map[string]any{"backup": abs, "verified": true, "schema_version": version})
			}
			fmt.Fprintf(a.stdout, "Backup written and checked: %s\n", abs)
			if !current {
				fmt.Fprintf(a.stdout, "The database is at schema version %d and was copied as it is; this healthpost (schema %d) upgrades it when 'healthpost serve' or 'healthpost migrate' next runs.\n", version, edge.SchemaVersion())
			}
			return nil
		},
	}
}
