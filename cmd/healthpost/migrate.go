package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/edge"
)

func (a *app) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema up to date (serve does this too)",
		Long: `Bring the database schema up to date, then stop. 'serve' migrates on start as
well; this command is for upgrades, where the package runs it between stopping
the old node and starting the new one. It refuses while a node is running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			lock, err := edge.LockDataDir(cfg.DataDir)
			if err != nil {
				return err
			}
			defer lock.Release()
			s, err := a.openStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer s.Close(cmd.Context())
			v, err := s.DatabaseVersion(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"database": cfg.DBPath(), "schema_version": v})
			}
			fmt.Fprintf(a.stdout, "%s is at schema version %d\n", cfg.DBPath(), v)
			return nil
		},
	}
}
