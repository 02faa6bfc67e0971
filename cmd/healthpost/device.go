package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/edge"
)

func (a *app) deviceCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "Register medical devices, list them, check them"}
	cmd.AddCommand(a.deviceAddCommand(), a.deviceListCommand(), a.deviceRemoveCommand(), a.deviceTestCommand(), a.deviceSimulateCommand())
	return cmd
}

func (a *app) deviceAddCommand() *cobra.Command {
	var d edge.Device
	var st devices.Settings
	cmd := &cobra.Command{
		Use:   "add NAME --kind KIND --transport serial|mqtt|mllp",
		Short: "Register a device (the running node picks it up on its next start)",
		Example: `  healthpost device add "BP monitor 1" --kind bp-monitor --transport serial --codec hl7 --port /dev/ttyUSB0 --baud 9600
  healthpost device add "Scale 1" --kind scale --transport serial --codec line --port /dev/ttyUSB1 \
      --pattern 'WT:\s*(?P<value>[0-9.]+)\s*(?P<unit>kg|lb)' --code 29463-7
  healthpost device add "Oximeter 2" --kind pulse-oximeter --transport mqtt --codec json
  healthpost device add "Ward monitor" --kind monitor --transport mllp --codec hl7 --listen :2575`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("device name required", `healthpost device add "BP monitor 1" --kind bp-monitor --transport serial --port /dev/ttyUSB0`)
			}
			d.Name = args[0]
			b, _ := json.Marshal(st)
			d.Settings = string(b)
			if _, err := devices.ParseSettings(d); err != nil {
				return &exitError{code: 2, err: err}
			}
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				if err := s.CreateDevice(ctx, &d); err != nil {
					return explainFieldErrors(err)
				}
				var token string
				if d.Transport == "mqtt" {
					var err error
					if token, err = s.NewDeviceSecret(ctx, d.ID); err != nil {
						return err
					}
				}
				if a.json {
					return a.printJSON(map[string]any{"device": d, "token": token})
				}
				fmt.Fprintf(a.stdout, "Registered %s (%s over %s, codec %s).\n", d.Name, d.Kind, d.Transport, d.Codec)
				if token != "" {
					fmt.Fprintf(a.stdout, "MQTT username: %s\nMQTT password: %s\nIt is shown only now; enter it in the device.\n", d.Name, token)
				}
				fmt.Fprintln(a.stdout, "Restart the node to start reading it: sudo systemctl restart healthpost")
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&d.Kind, "kind", "", "bp-monitor, pulse-oximeter, thermometer, scale, glucometer, analyzer or monitor")
	f.StringVar(&d.Transport, "transport", "", "serial, mqtt or mllp")
	f.StringVar(&d.Codec, "codec", "auto", "auto, hl7, astm, senml, json or line")
	f.StringVar(&st.Port, "port", "", "serial port, e.g. /dev/ttyUSB0")
	f.IntVar(&st.Baud, "baud", 0, "serial speed (default 9600)")
	f.StringVar(&st.Parity, "parity", "", "none, even or odd (default none)")
	f.IntVar(&st.DataBits, "data-bits", 0, "5 to 8 (default 8)")
	f.IntVar(&st.StopBits, "stop-bits", 0, "1 or 2 (default 1)")
	f.StringVar(&st.Listen, "listen", "", "MLLP: address to listen on, e.g. :2575")
	f.BoolVar(&st.Strict, "strict", false, "refuse frames that break the protocol (default: lenient)")
	f.StringVar(&st.Pattern, "pattern", "", "line devices: regular expression with (?P<value>...) and optionally (?P<unit>...)")
	f.StringVar(&st.Code, "code", "", "line devices: LOINC code of the value, e.g. 29463-7")
	f.StringVar(&st.Unit, "unit", "", "line devices: unit when the line does not print one")
	f.StringToStringVar(&st.Codes, "codes", nil, "vendor code to LOINC, e.g. GLU=2345-7,HB=718-7")
	return cmd
}

func (a *app) deviceListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List devices with their status, last reading and counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				list, err := s.Devices(cmd.Context())
				if err != nil {
					return err
				}
				if a.json {
					if list == nil {
						list = []edge.Device{}
					}
					return a.printJSON(list)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tKIND\tTRANSPORT\tCODEC\tLAST SEEN\tFRAMES\tREADINGS\tERRORS\tSTATUS")
				for _, d := range list {
					seen := "never"
					if !d.LastSeenAt.IsZero() {
						seen = d.LastSeenAt.Local().Format("02 Jan 15:04")
					}
					status := d.Status
					if !d.Enabled {
						status = "removed"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", d.Name, d.Kind, d.Transport, d.Codec, seen, d.Frames, d.Readings, d.Errors, status)
				}
				return tw.Flush()
			})
		},
	}
}

func (a *app) deviceRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Take a device out of service (its readings are kept)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("device name required", `healthpost device remove "BP monitor 1"`)
			}
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				if err := s.RemoveDevice(ctx, args[0]); errors.Is(err, edge.ErrNotFound) {
					return fmt.Errorf("no device %q in service; 'healthpost device list' shows them", args[0])
				} else if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(map[string]any{"removed": args[0]})
				}
				fmt.Fprintf(a.stdout, "%s is out of service; its readings are kept.\n", args[0])
				return nil
			})
		},
	}
}

// deviceTestCommand checks what can be checked without the device talking:
// its settings, its port or listen address, its credentials, and what the
// running node last saw of it.
func (a *app) deviceTestCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "test NAME",
		Short: "Check a device's settings, port and last status",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("device name required", `healthpost device test "BP monitor 1"`)
			}
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				d, err := s.Device(cmd.Context(), args[0])
				if errors.Is(err, edge.ErrNotFound) {
					return fmt.Errorf("no device %q; 'healthpost device list' shows them", args[0])
				} else if err != nil {
					return err
				}
				var checks []edge.Check
				add := func(name, status, format string, args ...any) {
					checks = append(checks, edge.Check{Name: name, Status: status, Detail: fmt.Sprintf(format, args...)})
				}
				st, err := devices.ParseSettings(d)
				if err != nil {
					add("settings", edge.CheckFail, "%v", err)
				} else {
					add("settings", edge.CheckOK, "%s over %s, codec %s", d.Kind, d.Transport, d.Codec)
				}
				switch d.Transport {
				case "serial":
					if _, err := os.Stat(st.Port); err != nil {
						add("port", edge.CheckFail, "%s is not there; plug in the cable, or check the port name ('healthpost doctor' lists the serial ports present)", st.Port)
					} else {
						add("port", edge.CheckOK, "%s is present, %d baud %d%s%d", st.Port, st.Baud, st.DataBits, st.Parity[:1], st.StopBits)
					}
				case "mllp":
					if l, err := net.Listen("tcp", st.Listen); err != nil && !edge.DataDirLocked(cfg.DataDir) {
						add("listen", edge.CheckFail, "%s is in use by another program: %v", st.Listen, err)
					} else {
						if l != nil {
							l.Close()
						}
						add("listen", edge.CheckOK, "%s is available to the node", st.Listen)
					}
				case "mqtt":
					if d.HasSecret {
						add("credentials", edge.CheckOK, "the device has a password (username %q)", d.Name)
					} else {
						add("credentials", edge.CheckFail, "no password; remove and add the device again to get one")
					}
				}
				switch {
				case d.LastSeenAt.IsZero():
					add("last seen", edge.CheckWarn, "the node has not heard from it yet")
				default:
					add("last seen", edge.CheckOK, "%s ago (%d frames, %d readings, %d errors)", time.Since(d.LastSeenAt).Round(time.Second), d.Frames, d.Readings, d.Errors)
				}
				if d.LastError != "" {
					add("last problem", edge.CheckWarn, "%s", d.LastError)
				}
				if a.json {
					if err := a.printJSON(map[string]any{"device": d, "checks": checks, "ok": edge.Healthy(checks)}); err != nil {
						return err
					}
				} else {
					tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
					for _, c := range checks {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", map[string]string{"ok": "OK", "warn": "WARN", "fail": "FAIL"}[c.Status], c.Name, c.Detail)
					}
					tw.Flush()
				}
				if !edge.Healthy(checks) {
					return &exitError{code: 3, err: fmt.Errorf("%s needs attention; see the FAIL lines above", d.Name)}
				}
				return nil
			})
		},
	}
}
