package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// debVersionRe is the subset of Debian versions healthpost uses: a native
// package (no "-revision"), no epoch, starting with a digit.
var debVersionRe = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*$`)

// checkVersion refuses a version dpkg would misread or refuse.
func checkVersion(v string) error {
	if !debVersionRe.MatchString(v) {
		return fmt.Errorf("version %q: use digits, letters and . + ~ only, starting with a digit, like 1.2.0 or 1.3.0~rc1 (a '-' would make dpkg read a Debian revision)", v)
	}
	return nil
}

// describeRe matches `git describe --tags --long` of a v* tag.
var describeRe = regexp.MustCompile(`^v([0-9][0-9A-Za-z.~+-]*)-([0-9]+)-g([0-9a-f]+)$`)

// gitVersion derives the package version from git, so that versions sort
// the way the commits were made:
//
//	tag v1.2.0 on HEAD           1.2.0
//	tag v1.3.0-rc1 on HEAD       1.3.0~rc1      (sorts before 1.3.0)
//	5 commits after v1.2.0       1.2.0+git5.gabcdef123456
//	no tag yet, 42 commits       0.0.0+git42.gabcdef123456
//
// and a tree with uncommitted changes gets ".dirty" appended.
func gitVersion(ctx context.Context, dir string) (string, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(string(out)), nil
	}
	var v string
	if d, err := git("describe", "--tags", "--long", "--abbrev=12", "--match", "v[0-9]*"); err == nil {
		v, err = versionFromDescribe(d)
		if err != nil {
			return "", err
		}
	} else {
		count, err := git("rev-list", "--count", "HEAD")
		if err != nil {
			return "", fmt.Errorf("no version: %w\nTry: go run ./packaging --version 1.0.0", err)
		}
		hash, err := git("rev-parse", "--short=12", "HEAD")
		if err != nil {
			return "", err
		}
		v = fmt.Sprintf("0.0.0+git%s.g%s", count, hash)
	}
	if st, err := git("status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
		v += ".dirty"
	}
	return v, nil
}

// versionFromDescribe turns `git describe --long` output into a Debian version.
func versionFromDescribe(d string) (string, error) {
	m := describeRe.FindStringSubmatch(d)
	if m == nil {
		return "", fmt.Errorf("git describe gave %q, not v<version>-<n>-g<hash>", d)
	}
	// A semver pre-release (1.3.0-rc1) sorts before its release in Debian
	// only with '~'.
	v := strings.Replace(m[1], "-", "~", 1)
	v = strings.ReplaceAll(v, "-", ".")
	if m[2] != "0" {
		v += fmt.Sprintf("+git%s.g%s", m[2], m[3])
	}
	if err := checkVersion(v); err != nil {
		return "", fmt.Errorf("tag v%s: %w", m[1], err)
	}
	return v, nil
}

// sourceDateEpoch is the time stamped into the package: SOURCE_DATE_EPOCH
// (https://reproducible-builds.org/specs/source-date-epoch/) when set, else
// the commit time of HEAD.
func sourceDateEpoch(ctx context.Context, dir, env string) (time.Time, error) {
	if env != "" {
		n, err := strconv.ParseInt(env, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", env)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	cmd := exec.CommandContext(ctx, "git", "log", "-1", "--format=%ct", "HEAD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return time.Time{}, fmt.Errorf("no build time: not a git checkout (%v)\nTry: SOURCE_DATE_EPOCH=$(date +%%s) go run ./packaging --version 1.0.0", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("commit time %q: %w", out, err)
	}
	return time.Unix(n, 0).UTC(), nil
}

// changelog is the package's Debian changelog: one entry for this build.
func changelog(version string, at time.Time) []byte {
	return fmt.Appendf(nil, "%s (%s) stable; urgency=medium\n\n"+
		"  * healthpost %s. What changed is in the project's git history;\n"+
		"    upgrading keeps every record (see /usr/share/doc/healthpost/README.md.gz).\n\n"+
		" -- %s  %s\n",
		PackageName, version, version, Maintainer, at.UTC().Format(time.RFC1123Z))
}

// copyright is the machine-readable copyright file (DEP-5).
func copyright(at time.Time) []byte {
	return fmt.Appendf(nil, `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: healthpost
Upstream-Contact: %s
Source: %s
Comment: /usr/bin/healthpost is a static Go binary. It also contains the Go
 standard library (BSD-3-clause) and the Go modules listed in the project's
 go.mod (among them modernc.org/sqlite, BSD-3-clause; spf13/cobra,
 Apache-2.0; BurntSushi/toml, Expat), each under its own licence, which
 'go version -m /usr/bin/healthpost' lists with their versions.

Files: *
Copyright: %d The healthpost authors
License: Expat

License: Expat
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all
 copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
 SOFTWARE.
`, Maintainer, Homepage, at.Year())
}
