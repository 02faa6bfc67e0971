package main

import (
	"fmt"
	"path/filepath"

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
			ctx := cmd.Context()
			s, err := a.openStore(ctx, cfg)
			if err != nil {
				return err
			}
			defer s.Close(ctx)
			shown := false
			progress := func(done, total int64) {
				if a.json || total < 8<<20 {
					return
				}
				shown = true
				fmt.Fprintf(a.stderr, "\rbacking up: %3d%% (%d of %d MB)", done*100/max(total, 1), done>>20, total>>20)
			}
			if err := s.Backup(ctx, args[0], progress); err != nil {
				return err
			}
			if shown {
				fmt.Fprintln(a.stderr)
			}
			abs, _ := filepath.Abs(args[0])
			if a.json {
				return a.printJSON(map[string]any{"backup": abs, "verified": true})
			}
			fmt.Fprintf(a.stdout, "Backup written and checked: %s\n", abs)
			return nil
		},
	}
}
