package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/edge"
)

func (a *app) userCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Add, list, disable users and set their passwords"}
	cmd.AddCommand(a.userAddCommand(), a.userListCommand(), a.userPasswdCommand(), a.userDisableCommand())
	return cmd
}

// readPassword takes the password from the first line of stdin when asked
// to, or generates one that is printed once.
func (a *app) readPassword(fromStdin bool) (pw string, generated bool, err error) {
	if !fromStdin {
		return edge.GeneratePassword(), true, nil
	}
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", false, errors.New("no password on standard input")
	}
	return strings.TrimRight(line, "\r\n"), false, nil
}

func (a *app) userAddCommand() *cobra.Command {
	var u edge.User
	var stdin bool
	cmd := &cobra.Command{
		Use:   "add USERNAME --role ROLE",
		Short: "Add a user (roles: health-worker, doctor, admin, technician)",
		Long: `Add a user. Without --password-stdin a password is generated and printed
once: write it down and give it to the user.`,
		Example: "  healthpost user add asha.kumari --role health-worker --name \"Asha Kumari\"",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("username required", `healthpost user add asha.kumari --role health-worker --name "Asha Kumari"`)
			}
			if u.Role == "" {
				return usageError("--role required (health-worker, doctor, admin or technician)", "healthpost user add "+args[0]+" --role health-worker")
			}
			u.Username = strings.ToLower(args[0])
			pw, generated, err := a.readPassword(stdin)
			if err != nil {
				return err
			}
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				if err := s.CreateUser(ctx, &u, pw); err != nil {
					return explainFieldErrors(err)
				}
				if a.json {
					out := map[string]any{"user": u}
					if generated {
						out["password"] = pw
					}
					return a.printJSON(out)
				}
				fmt.Fprintf(a.stdout, "Added %s (%s).\n", u.Username, u.Role)
				if generated {
					fmt.Fprintf(a.stdout, "Password: %s\nIt is shown only now; give it to the user.\n", pw)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&u.Role, "role", "", "health-worker, doctor, admin or technician")
	f.StringVar(&u.DisplayName, "name", "", "full name shown in the UI and on slips")
	f.StringVar(&u.HPRID, "hpr-id", "", "Healthcare Professionals Registry ID (doctors, nurses)")
	f.StringVar(&u.Language, "language", "en", "en or hi")
	f.BoolVar(&stdin, "password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

func (a *app) userListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				users, err := s.Users(cmd.Context())
				if err != nil {
					return err
				}
				if a.json {
					if users == nil {
						users = []edge.User{}
					}
					return a.printJSON(users)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "USERNAME\tROLE\tNAME\tHPR ID\tSTATUS")
				for _, u := range users {
					status := "active"
					if u.Disabled {
						status = "disabled"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Username, u.Role, u.DisplayName, u.HPRID, status)
				}
				return tw.Flush()
			})
		},
	}
}

func (a *app) userPasswdCommand() *cobra.Command {
	var stdin bool
	cmd := &cobra.Command{
		Use:   "passwd USERNAME",
		Short: "Set a new password for a user (their sessions end)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("username required", "healthpost user passwd asha.kumari")
			}
			pw, generated, err := a.readPassword(stdin)
			if err != nil {
				return err
			}
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				if err := s.SetPassword(ctx, strings.ToLower(args[0]), pw); err != nil {
					return explainUserError(args[0], explainFieldErrors(err))
				}
				if a.json {
					out := map[string]any{"username": args[0]}
					if generated {
						out["password"] = pw
					}
					return a.printJSON(out)
				}
				fmt.Fprintf(a.stdout, "Password of %s changed.\n", args[0])
				if generated {
					fmt.Fprintf(a.stdout, "New password: %s\nIt is shown only now.\n", pw)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

func (a *app) userDisableCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "disable USERNAME",
		Short: "Stop a user from signing in (their records stay)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("username required", "healthpost user disable asha.kumari")
			}
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				if err := s.DisableUser(ctx, strings.ToLower(args[0])); err != nil {
					return explainUserError(args[0], err)
				}
				if a.json {
					return a.printJSON(map[string]any{"username": args[0], "disabled": true})
				}
				fmt.Fprintf(a.stdout, "%s can no longer sign in.\n", args[0])
				return nil
			})
		},
	}
}

func explainUserError(username string, err error) error {
	if errors.Is(err, edge.ErrNotFound) {
		return fmt.Errorf("no user %q; 'healthpost user list' shows who exists", username)
	}
	return err
}

// fieldMessages are the CLI's English texts for validation keys.
var fieldMessages = map[string]string{
	"error.username_invalid": "use 2 to 32 lowercase letters, digits, dots, dashes or underscores",
	"error.username_taken":   "that username is already taken",
	"error.role_invalid":     "must be health-worker, doctor, admin or technician",
	"error.hpr_invalid":      "an HPR ID is 14 digits, like 71-2665-5777-1234",
	"error.language_invalid": "must be en or hi",
	"error.password_short":   fmt.Sprintf("must be at least %d characters", edge.MinPasswordLen),
}

func explainFieldErrors(err error) error {
	var fe edge.FieldErrors
	if !errors.As(err, &fe) {
		return err
	}
	var parts []string
	for field, key := range fe {
		msg, ok := fieldMessages[key]
		if !ok {
			msg = key
		}
		parts = append(parts, field+": "+msg)
	}
	return &exitError{code: 2, err: errors.New(strings.Join(parts, "; "))}
}
