// Command packaging builds healthpost's .deb packages, the way a district
// technician installs the node on a Raspberry Pi or a small PC:
//
//	go run ./packaging                  # version from the git tag, into dist/
//	go run ./packaging --version 1.2.0 --out dist --arch amd64,arm64,armhf
//
// It cross-builds static binaries (CGO_ENABLED=0) for each architecture and
// packs them with nfpm, used as a library, together with the systemd unit,
// the default configuration, udev rules, the man page and the maintainer
// scripts kept in packaging/files. The same commit (or the same
// SOURCE_DATE_EPOCH and --version) gives the same bytes.
//
// It must never change the repository: everything it writes goes to the
// output directory or to a temporary directory it removes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		}
		os.Exit(2)
	}
}

// run parses the command line and builds the packages it asks for.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	opts.Log = stderr
	pkgs, err := Build(ctx, opts)
	if err != nil {
		return err
	}
	for _, p := range pkgs {
		fmt.Fprintln(stdout, p.Path)
	}
	return nil
}

// parseFlags turns the command line into build options; it does not build.
func parseFlags(args []string, stderr io.Writer) (Options, error) {
	var opts Options
	var arches string
	fs := flag.NewFlagSet("packaging", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opts.Version, "version", "", "package version, like 1.2.0 or 1.3.0~rc1 (default: from 'git describe', the latest v* tag)")
	fs.StringVar(&opts.Out, "out", "dist", "directory the .deb files are written to")
	fs.StringVar(&arches, "arch", strings.Join(DefaultArches, ","), "comma-separated Debian architectures: amd64, arm64, armhf")
	fs.StringVar(&opts.GoOverlay, "go-overlay", "", "file passed to 'go build -overlay' (tests build later schema versions with it)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./packaging [--version X] [--out DIR] [--arch LIST]\n\n"+
			"Builds healthpost_<version>_<arch>.deb for each architecture. File times come from\n"+
			"SOURCE_DATE_EPOCH, else the commit time of HEAD, so a build is reproducible.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() > 0 {
		return opts, fmt.Errorf("unexpected argument %q\nTry: go run ./packaging --version 1.2.0 --out dist", fs.Arg(0))
	}
	for a := range strings.SplitSeq(arches, ",") {
		if a = strings.TrimSpace(a); a != "" {
			opts.Arches = append(opts.Arches, a)
		}
	}
	return opts, nil
}
