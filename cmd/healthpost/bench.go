package main

import (
	"bufio"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/webui/tablets"
)

// benchCommand groups the load tools. It is hidden from the help of a
// production node: its tablets write made-up visits.
func (a *app) benchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:    "bench",
		Short:  "Load tools for test nodes (they write made-up records)",
		Hidden: true,
	}
	cmd.AddCommand(a.benchTabletsCommand())
	return cmd
}

// tabletsOptions are the flags of `healthpost bench tablets`.
type tabletsOptions struct {
	url, user, password      string
	passwordStdin            bool
	adminUser, adminPass     string
	tablets, visits          int
	duration, think, timeout time.Duration
	seed                     uint64
}

func (a *app) benchTabletsCommand() *cobra.Command {
	var o tabletsOptions
	cmd := &cobra.Command{
		Use:   "tablets --url URL --user NAME --password PASSWORD",
		Short: "Play a busy OPD's tablets against a test node and report speed",
		Long: `Play a health centre's tablets against a node's web UI and report how fast
it answers. Each tablet signs in with its own session, then for --duration
finds patients (names, misspelled names, Devanagari, phone and ABHA numbers),
opens their page and records OPD visits with vitals, a diagnosis and a
prescription, over HTTP as a browser does. With --think 0 (the default) each
tablet asks again as soon as it is answered.

It reports requests per second, p50/p95/p99 latency and bytes sent (gzip, as
on the wire) per kind of page, and the first failures. Any answer that is not
2xx or 3xx is a failure, and so is a form that does not save; the command
exits 1 when anything failed.

It writes made-up visits into the patients it finds: use it only on a test
node, never on a centre's live node. The user must be a health worker or a
doctor; --admin-user also weighs the admin page.`,
		Example: `  healthpost bench tablets --url http://127.0.0.1:8080 --user bench.asha --password-stdin --tablets 50 --duration 60s
  healthpost bench tablets --url http://127.0.0.1:8080 --user bench.asha --password pw --think 5s --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			const try = "healthpost bench tablets --url http://127.0.0.1:8080 --user bench.asha --password-stdin"
			switch {
			case o.url == "":
				return usageError("--url of the node required", try)
			case o.user == "":
				return usageError("--user required: a health worker's account on the test node", try)
			case o.password != "" && o.passwordStdin:
				return usageError("give --password or --password-stdin, not both", try)
			case o.tablets < 1 || o.duration <= 0 || o.timeout <= 0 || o.think < 0 || o.visits < 0:
				return usageError("--tablets, --duration and --timeout must be positive, --think and --visits not negative", try)
			case o.adminUser != "" && o.adminPass == "":
				return usageError("--admin-user needs --admin-password", try+" --admin-user admin --admin-password PW")
			}
			if o.passwordStdin {
				line, err := bufio.NewReader(a.stdin).ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("no password on standard input")
				}
				o.password = strings.TrimRight(line, "\r\n")
			}
			if o.password == "" {
				return usageError("--password or --password-stdin required", try)
			}
			f := tablets.New(o.url, o.user, o.password)
			f.AdminUsername, f.AdminPassword = o.adminUser, o.adminPass
			f.Tablets, f.Duration, f.Think, f.Timeout, f.Seed, f.Visits = o.tablets, o.duration, o.think, o.timeout, o.seed, o.visits
			if !a.json {
				f.Progress = a.stdout
				fmt.Fprintf(a.stdout, "Signing in %d tablets at %s, then %s of load.\n", o.tablets, o.url, o.duration)
			}
			r, err := f.Run(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				err = a.printJSON(r)
			} else {
				err = r.WriteText(a.stdout)
			}
			if err != nil {
				return err
			}
			if r.Failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d requests failed; the first are listed above", r.Failed)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "the node's web UI, e.g. http://127.0.0.1:8080")
	f.StringVar(&o.user, "user", "", "health worker or doctor account every tablet signs in with")
	f.StringVar(&o.password, "password", "", "its password (visible to other users of this computer; see --password-stdin)")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	f.StringVar(&o.adminUser, "admin-user", "", "an admin account, to weigh the admin page too")
	f.StringVar(&o.adminPass, "admin-password", "", "the admin account's password")
	f.IntVar(&o.tablets, "tablets", tablets.DefaultTablets, "tablets at once, each with its own session")
	f.DurationVar(&o.duration, "duration", tablets.DefaultDuration, "how long to run the load, after signing in")
	f.DurationVar(&o.think, "think", 0, "mean pause after each page (0: ask again at once)")
	f.DurationVar(&o.timeout, "timeout", tablets.DefaultTimeout, "how long to wait for each answer")
	f.IntVar(&o.visits, "visits", 0, "stop each tablet after finalizing this many visits (0: run for --duration)")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the tablets' choices, to repeat a run")
	return cmd
}
