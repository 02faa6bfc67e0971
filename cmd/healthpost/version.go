package main

import (
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/edge"
)

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, build time and database schema version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := map[string]any{
				"version":        edge.Version(),
				"build_time":     edge.BuildTime().UTC().Format(time.RFC3339),
				"schema_version": edge.SchemaVersion(),
				"go":             runtime.Version(),
				"platform":       runtime.GOOS + "/" + runtime.GOARCH,
			}
			if a.json {
				return a.printJSON(v)
			}
			fmt.Fprintf(a.stdout, "healthpost %s (built %s, schema %d, %s, %s)\n", v["version"], v["build_time"],
				v["schema_version"], v["go"], v["platform"])
			return nil
		},
	}
}
