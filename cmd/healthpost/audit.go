package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/edge"
)

func (a *app) auditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Work with the audit log"}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Check that no audit entry was changed or deleted; name any that was",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				rep, err := s.VerifyAudit(cmd.Context())
				if err != nil {
					return err
				}
				if a.json {
					if err := a.printJSON(map[string]any{"ok": rep.OK(), "entries": rep.Entries, "problems": rep.Problems}); err != nil {
						return err
					}
				} else if rep.OK() {
					fmt.Fprintf(a.stdout, "Audit log intact: %d entries.\n", rep.Entries)
				} else {
					fmt.Fprintf(a.stdout, "Audit log has %d problems in %d entries:\n", len(rep.Problems), rep.Entries)
					for _, p := range rep.Problems {
						fmt.Fprintf(a.stdout, "  entry %d: %s\n", p.Seq, p.Problem)
					}
				}
				if !rep.OK() {
					return &exitError{code: 3, err: errors.New("the audit log was tampered with")}
				}
				return nil
			})
		},
	})
	return cmd
}
