package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/exportfile"
)

func (a *app) pushCommand() *cobra.Command {
	var upstream, token string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "push FILE... [--upstream URL]",
		Short: "Send USB export files to the district hub from any machine with a link, and write each receipt beside its file",
		Long: `Send health centres' USB export files ('healthpost export') to the district
hub, from any machine with a link (the district office's laptop), and write
the hub's signed receipt beside each file as FILE.receipt.json, to carry
back to the health centre ('healthpost import'). The hub checks each file
whole and refuses a corrupted or cut one without storing anything of it.
Pushing a file again is harmless: nothing is stored twice. A directory
stands for every export file in it.

The upload authenticates like a node: --token, or upstream.token
(HEALTHPOST_UPSTREAM_TOKEN); the hub issues one with 'healthpost hub token
add NAME'. With upstream.receipt_key set, the hub's signature is checked too.`,
		Example: "  healthpost push /media/usb --upstream https://hub.district.example/fhir --token hpn_...",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("export file required", "healthpost push /media/usb/FILE.hpx --upstream https://hub.district.example/fhir")
			}
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			u := cfg.Upstream
			if upstream != "" {
				u.URL = upstream
			}
			if token != "" {
				u.Token = token
			}
			if u.URL == "" {
				return usageError("--upstream URL required: the hub's FHIR base URL", "healthpost push FILE.hpx --upstream https://hub.district.example/fhir")
			}
			c, err := syncq.NewClientFromConfig(u)
			if err != nil {
				return err
			}
			var hubKey ed25519.PublicKey
			if u.ReceiptKey != "" {
				if hubKey, err = exportfile.ParsePublicKey(u.ReceiptKey); err != nil {
					return err
				}
			}
			files, err := receiptFiles(args, exportfile.Ext)
			if err != nil {
				return err
			}
			type pushed struct {
				File      string `json:"file"`
				Receipt   string `json:"receipt,omitempty"`
				Documents int    `json:"documents"`
				Refused   int    `json:"refused"`
				Error     string `json:"error,omitempty"`
			}
			var out []pushed
			var failed int
			for _, f := range files {
				p := pushed{File: f}
				err := a.pushOne(cmd.Context(), c, f, hubKey, timeout, &p.Receipt, &p.Documents, &p.Refused)
				if err != nil {
					failed++
					p.Error = err.Error()
					if !a.json {
						fmt.Fprintf(a.stdout, "%s: not delivered: %v\n", f, err)
					}
				} else if !a.json {
					fmt.Fprintf(a.stdout, "%s: %d documents taken by the hub", f, p.Documents)
					if p.Refused > 0 {
						fmt.Fprintf(a.stdout, " (%d refused; the receipt says why)", p.Refused)
					}
					fmt.Fprintf(a.stdout, ".\n  Receipt: %s: take it back to the health centre for 'healthpost import'.\n", p.Receipt)
				}
				out = append(out, p)
			}
			if a.json {
				if err := a.printJSON(out); err != nil {
					return err
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d files not delivered; sending again is safe", failed, len(files))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&upstream, "upstream", "", "the hub's FHIR base URL (default upstream.url)")
	f.StringVar(&token, "token", "", "the token to upload with (default upstream.token)")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "how long one file may take")
	return cmd
}

// pushOne sends one file and writes its receipt beside it.
func (a *app) pushOne(ctx context.Context, c *syncq.Client, file string, hubKey ed25519.PublicKey, timeout time.Duration,
	receiptPath *string, docs, refused *int) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	signed, r, err := c.PushExport(ctx, data, hubKey)
	var de *syncq.DeliveryError
	if errors.As(err, &de) && de.Kind == syncq.KindAuth {
		return fmt.Errorf("%w; check --token (the hub issues one with 'healthpost hub token add NAME')", err)
	}
	if err != nil {
		return err
	}
	*receiptPath = strings.TrimSuffix(file, exportfile.Ext) + exportfile.ReceiptExt
	if err := exportfile.WriteFileAtomic(*receiptPath, signed, 0o644); err != nil {
		return fmt.Errorf("the hub took the file, but the receipt could not be written (push again to get it): %w", err)
	}
	*docs = len(r.Documents)
	for _, d := range r.Documents {
		if d.Refused != "" {
			*refused++
		}
	}
	return nil
}
