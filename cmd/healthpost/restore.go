package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/edge"
)

func (a *app) restoreCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the database with a backup (the node must be stopped)",
		Long: `Replace the database with the backup FILE. The node must be stopped first
(sudo systemctl stop healthpost). The backup is checked before anything is
touched, and the database it replaces is kept beside it, never deleted.`,
		Example: "  healthpost restore /media/usb/healthpost-2026-11-22.db",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("backup file required", "healthpost restore /media/usb/healthpost-backup.db")
			}
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			ctx := operator(cmd.Context())
			aside, err := edge.Restore(ctx, cfg.DataDir, args[0], time.Now())
			if err != nil {
				return err
			}
			s, err := a.openStore(ctx, cfg)
			if err != nil {
				return err
			}
			defer s.Close(ctx)
			if err := s.RecordRestore(ctx, args[0]); err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"restored": args[0], "previous": aside})
			}
			fmt.Fprintf(a.stdout, "Restored %s into %s.\n", args[0], cfg.DataDir)
			if aside != "" {
				fmt.Fprintf(a.stdout, "The database it replaced is kept as %s.\n", aside)
			}
			return nil
		},
	}
}
