package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration, secrets masked, with where each value came from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"file": cfg.File, "settings": cfg.Settings()})
			}
			file := cfg.File
			if file == "" {
				file = "none, built-in defaults"
			}
			fmt.Fprintf(a.stdout, "# config file: %s\n%s", file, cfg.TOML())
			return nil
		},
	})
	return cmd
}
