package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/edge"
)

func (a *app) doctorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check the node: database, disk, clock, fsync rate, ports, serial ports, audit log",
		Long: `Check the node and say what to do about each problem. Exits 0 when healthy,
3 when a check failed (warnings alone do not fail).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var checks []edge.Check
			s, err := a.openStore(ctx, cfg)
			if err != nil {
				checks = []edge.Check{{Name: "database", Status: edge.CheckFail, Detail: err.Error()}}
			} else {
				defer s.Close(ctx)
				checks = edge.Diagnose(ctx, cfg, s)
			}
			healthy := edge.Healthy(checks)
			if a.json {
				if err := a.printJSON(map[string]any{"healthy": healthy, "checks": checks}); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				for _, c := range checks {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(c.Status), c.Name, c.Detail)
				}
				tw.Flush()
			}
			if !healthy {
				return &exitError{code: 3, err: errors.New("the node is not healthy; see the FAIL lines above")}
			}
			return nil
		},
	}
}
