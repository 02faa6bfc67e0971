package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/exportfile"
)

// nodeSigningKey is this node's Ed25519 key, made on first use: it signs
// USB export files and receipt reports.
func nodeSigningKey(cfg *edge.Config) (ed25519.PrivateKey, error) {
	return syncq.LoadOrCreateSigningKey(filepath.Join(cfg.DataDir, syncq.SigningKeyFileName))
}

func (a *app) exportCommand() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "export --to DIR",
		Short: "Write every record not yet delivered to one encrypted file on a USB stick, for the district hub",
		Long: `With no link for weeks, records go to the district on a USB stick. This writes
every document the hub has not yet confirmed into one file in --to (where the
stick is mounted), encrypted to the hub's key (upstream.export_key: only the
hub can read it) and signed with this node's key. The file appears whole or
not at all: a full stick, or one pulled out too early, leaves no half file
and nothing marked.

Take the stick to the district office: 'healthpost push FILE' there (or the
hub's inbox directory) delivers the file and writes a receipt beside it.
Bring the receipt back and run 'healthpost import RECEIPT' here. Documents
whose receipt has not come back are carried again by the next export, and
after upstream.export_wait (7 days) also go by the link when there is one.

The hub needs this node's key once: 'healthpost export key' prints it.`,
		Example: "  healthpost export --to /media/usb\n  healthpost export key",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageError("--to DIR required: the directory the USB stick is mounted at", "healthpost export --to /media/usb")
			}
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				if cfg.Upstream.ExportKey == "" {
					return errors.New("no hub export key configured; set upstream.export_key to the key 'healthpost hub key' prints on the district hub")
				}
				m, err := syncMapper(s, cfg)
				if err != nil {
					return err
				}
				key, err := nodeSigningKey(cfg)
				if err != nil {
					return err
				}
				node := cfg.Facility.NodeID
				if node == "" {
					if node, err = s.NodeID(ctx); err != nil && !errors.Is(err, edge.ErrNotFound) {
						return err
					}
				}
				res, err := syncq.Export(ctx, s, m, syncq.ExportOptions{Dir: to, HubKey: cfg.Upstream.ExportKey, Key: key,
					NodeID: node, Wait: cfg.Upstream.ExportWait})
				if errors.Is(err, syncq.ErrNothingToExport) {
					if a.json {
						return a.printJSON(map[string]any{"documents": 0, "quarantined": quarantinedOf(res)})
					}
					fmt.Fprintln(a.stdout, "Nothing to export: every record has been delivered or confirmed.")
					if n := quarantinedOf(res); n > 0 {
						fmt.Fprintf(a.stdout, "%d records cannot be made into documents and were set aside; 'healthpost sync status' shows why.\n", n)
					}
					return nil
				}
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res)
				}
				a.printExport(res)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "directory to write the file in: where the USB stick is mounted")
	cmd.AddCommand(&cobra.Command{
		Use:   "key",
		Short: "Print the key this node signs export files with, for the hub to register",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			key, err := nodeSigningKey(cfg)
			if err != nil {
				return err
			}
			pub := key.Public().(ed25519.PublicKey)
			k, fp := exportfile.EncodePublicKey(pub), exportfile.Fingerprint(pub)
			if a.json {
				return a.printJSON(map[string]string{"key": k, "fingerprint": fp})
			}
			fmt.Fprintf(a.stdout, "This node signs its USB export files with the key\n\n    %s\n\n(fingerprint %s). On the district hub, register it once:\n\n    healthpost hub token signing-key NODE %s\n",
				k, fp, k)
			return nil
		},
	})
	return cmd
}

func quarantinedOf(res *syncq.ExportResult) int {
	if res == nil {
		return 0
	}
	return res.Quarantined
}

func (a *app) printExport(res *syncq.ExportResult) {
	w := a.stdout
	fmt.Fprintf(w, "Wrote %d documents of %d patients to %s (%s).\n", res.Documents, res.Patients, res.Path, kb(res.Bytes))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kinds := make([]string, 0, len(res.ByKind))
	for k := range res.ByKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Fprintf(tw, "  %s\t%d\n", k, res.ByKind[k])
	}
	tw.Flush()
	if res.Again > 0 {
		fmt.Fprintf(w, "%d of them were in an earlier file whose receipt has not come back; this file carries them again.\n", res.Again)
	}
	fmt.Fprintln(w, "Only the district hub can read the file.")
	fmt.Fprintln(w, "Next: at the district office, 'healthpost push FILE' sends it to the hub and writes a receipt beside it;")
	fmt.Fprintln(w, "bring the receipt back and run 'healthpost import RECEIPT' here.")
	fmt.Fprintf(w, "Until then these documents wait; from %s they also go by the link, when there is one.\n",
		res.WaitUntil.Local().Format("02 Jan 2006 15:04"))
	if res.Quarantined > 0 {
		fmt.Fprintf(w, "%d records cannot be made into documents and were set aside; 'healthpost sync status' shows why.\n", res.Quarantined)
	}
	if res.Held > 0 {
		fmt.Fprintf(w, "%d records could not be read just now and were left out (with their patients' later records); export again.\n", res.Held)
	}
}
