package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// helpPage is one command's --help output.
type helpPage struct {
	path []string // "user", "add"
	text string
	subs []string
}

// collectHelp runs bin's --help for the command at path and every command
// under it, in the order --help lists them.
func collectHelp(ctx context.Context, bin string, path []string) ([]helpPage, error) {
	cmd := exec.CommandContext(ctx, bin, append(slices.Clone(path), "--help")...)
	cmd.Env = []string{"LANG=C", "HOME=/nonexistent"} // help must not depend on who runs it
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("healthpost %s --help: %w", strings.Join(path, " "), err)
	}
	p := helpPage{path: path, text: string(out), subs: subcommands(string(out))}
	pages := []helpPage{p}
	for _, sub := range p.subs {
		more, err := collectHelp(ctx, bin, append(slices.Clone(path), sub))
		if err != nil {
			return nil, err
		}
		pages = append(pages, more...)
	}
	return pages, nil
}

// subcommands reads the "Available Commands:" block of cobra's help, leaving
// out cobra's own help and completion commands.
func subcommands(help string) []string {
	var subs []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(help))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "Available Commands:":
			in = true
		case in && strings.TrimSpace(line) == "":
			in = false
		case in:
			name := strings.Fields(line)[0]
			if name != "help" && name != "completion" {
				subs = append(subs, name)
			}
		}
	}
	return subs
}

// trimHelp drops the parts of a command's help that the man page says once:
// the global flags and cobra's pointer to more help.
func trimHelp(help string) string {
	if i := strings.Index(help, "\nGlobal Flags:\n"); i >= 0 {
		help = help[:i+1]
	}
	if i := strings.Index(help, "\nUse \"healthpost"); i >= 0 {
		help = help[:i+1]
	}
	return strings.TrimRight(help, "\n")
}

// roffText escapes plain text for a no-fill block of a man page.
func roffText(s string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.ReplaceAll(line, `\`, `\e`)
		line = strings.ReplaceAll(line, "-", `\-`)
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			line = `\&` + line
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// manPage renders healthpost(1) from the binary's own help, so the page
// describes exactly the commands and flags the packaged binary has.
func manPage(ctx context.Context, bin, version string, date time.Time) ([]byte, error) {
	pages, err := collectHelp(ctx, bin, nil)
	if err != nil {
		return nil, err
	}
	root := pages[0].text
	if i := strings.Index(root, "\nUsage:\n"); i >= 0 {
		root = root[:i]
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, ".TH HEALTHPOST 1 %q %q \"healthpost manual\"\n", date.Format("2006-01-02"), "healthpost "+version)
	b.WriteString(".SH NAME\nhealthpost \\- the health centre's edge node: patients, visits, devices, sync\n")
	b.WriteString(".SH SYNOPSIS\n.B healthpost\n.I command\n.RI [ flags ]\n")
	b.WriteString(".SH DESCRIPTION\n.nf\n" + roffText(strings.TrimRight(root, "\n")) + ".fi\n")
	b.WriteString(".SH GLOBAL FLAGS\n.nf\n" + roffText(flagsBlock(pages[0].text)) + ".fi\n")
	b.WriteString(".SH COMMANDS\n")
	for _, p := range pages[1:] {
		fmt.Fprintf(&b, ".SS %q\n.nf\n%s.fi\n", "healthpost "+strings.Join(p.path, " "), roffText(trimHelp(p.text)))
	}
	b.WriteString(manTail)
	return b.Bytes(), nil
}

// flagsBlock is the "Flags:" block of the root command's help.
func flagsBlock(help string) string {
	i := strings.Index(help, "\nFlags:\n")
	if i < 0 {
		return ""
	}
	block := help[i+len("\nFlags:\n"):]
	if j := strings.Index(block, "\n\n"); j >= 0 {
		block = block[:j]
	}
	return block
}

// manTail is what the help cannot say: the installed files, the service,
// exit codes.
const manTail = `.SH FILES
.TP
.I /etc/healthpost/healthpost.toml
Configuration. Every key is listed there with its default, commented out.
A misspelt key stops start\-up with a message naming it;
.B healthpost config show
prints the effective configuration.
.TP
.I /etc/healthpost/secrets.env
Secrets (HEALTHPOST_UPSTREAM_TOKEN, HEALTHPOST_MQTT_PASSWORD), read by the
service only; mode 0600, created at install.
.TP
.I /var/lib/healthpost/healthpost.db
The database: every patient, visit and reading. Copy it with
.BR "healthpost backup" ,
never with cp while the node runs.
.TP
.I /var/lib/healthpost/backups/
Copies taken before each upgrade.
.TP
.I /dev/healthpost/
Stable names of USB\-serial adapters, by serial number and by USB socket.
.SH SERVICE
The package runs
.B healthpost serve
as the systemd service
.BR healthpost ,
as the user healthpost (in the group dialout, for serial ports).
Start, stop and inspect it with
.BR "systemctl start|stop|status healthpost" ;
its log, which holds the first admin password, with
.BR "journalctl \-u healthpost" .
.SH ENVIRONMENT
Every configuration key can be set with HEALTHPOST_<KEY>, the key in capitals
with dots as underscores, for example HEALTHPOST_DATA_DIR or
HEALTHPOST_HTTP_LISTEN. HEALTHPOST_CONFIG names the configuration file.
.SH EXIT STATUS
0 on success; 1 on failure; 2 for a usage mistake (the message says what to
type instead); 3 when
.B healthpost doctor
finds the node unhealthy or
.B healthpost audit verify
finds the audit log altered.
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1),
and the technician's guide,
.IR /usr/share/doc/healthpost/README.md.gz .
`
