package astm

import (
	"context"
	"errors"
	"time"
)

// Reasons a receiver NAKs a frame.
var (
	errChecksum    = errors.New("bad checksum")
	errFrameNumber = errors.New("wrong frame number")
	errMalformed   = errors.New("malformed frame")
	errOversized   = errors.New("frame too long")
	errLimit       = errors.New("message over limits")
)

const hexDigits = "0123456789ABCDEF"

// AppendFrame appends one E1381 frame carrying text to dst: STX, frame
// number fn (taken mod 8), text, ETX if last or ETB if not, the checksum as
// two uppercase hex digits, CR LF. It does not check text; a Sender does.
func AppendFrame(dst []byte, fn int, text []byte, last bool) []byte {
	dst = append(dst, STX)
	start := len(dst)
	dst = append(dst, byte('0'+fn&7))
	dst = append(dst, text...)
	if last {
		dst = append(dst, ETX)
	} else {
		dst = append(dst, ETB)
	}
	var sum byte
	for _, c := range dst[start:] {
		sum += c
	}
	return append(dst, hexDigits[sum>>4], hexDigits[sum&0x0f], CR, LF)
}

// frame is one frame as a receiver read it.
type frame struct {
	fn   int    // frame number 0-7, or -1 if the frame had none
	text []byte // frame text; aliases the receiver's scratch buffer
	end  byte   // ETX or ETB (a lenient frame without either is taken as ETX)
	dev  Deviation
	bad  error // why the frame must be NAKed; nil for a good frame
}

// frameReader reads frames for a Receiver.
type frameReader struct {
	l       *link
	lenient bool
	maxText int
	wait    time.Duration // for each byte inside a frame
	trailer time.Duration // for each byte after ETX or ETB
	scratch []byte
}

// scan is what reading one frame observed, for validate to judge.
type scan struct {
	sum      byte   // checksum computed over FN, text and ETX/ETB
	cs       []byte // checksum characters received, 0 to 2
	cr, lf   bool   // CR, LF after the checksum
	noEnd    bool   // the frame had no ETX or ETB
	garbage  bool   // something other than a checksum or line end after ETX/ETB
	oversize bool   // text over the mode's limit (the rest was dropped)
	textLF   bool   // LF in the text
	ctrl     bool   // other forbidden control characters in the text
	badFN    bool   // frame number 8 or 9
}

// read reads the rest of a frame whose STX has just been read. It returns an
// error only when the connection failed or timed out; a frame that is wrong
// comes back with f.bad set, so the caller can NAK it.
func (fr *frameReader) read(ctx context.Context) (frame, error) {
	f := frame{fn: -1}
	var sc scan
	text := fr.scratch[:0]
	defer func() { fr.scratch = text[:0] }()
	for first := true; f.end == 0; first = false {
		c, err := fr.l.readByte(ctx, fr.wait)
		if err != nil {
			return f, err
		}
		if first && c >= '0' && c <= '9' {
			f.fn = int(c - '0')
			sc.badFN = c > '7'
			sc.sum += c
			continue
		}
		switch c {
		case ETX, ETB:
			f.end = c
			sc.sum += c
			continue
		case STX, EOT, ENQ:
			// The frame ran into the next one, or the end of transmission,
			// without ETX: there is no checksum and no trailer.
			fr.l.unread()
			f.text = text
			sc.noEnd = true
			return fr.validate(f, &sc), nil
		case LF:
			sc.textLF = true
		default:
			sc.ctrl = sc.ctrl || forbiddenInText(c)
		}
		sc.sum += c
		if len(text) < fr.maxText {
			text = append(text, c)
		} else {
			sc.oversize = true
		}
	}
	f.text = text
	if err := fr.readTrailer(ctx, &sc); err != nil {
		return f, err
	}
	return fr.validate(f, &sc), nil
}

// readTrailer reads what follows ETX or ETB: up to two hex digits, then CR
// LF. Each byte is waited for only briefly, so a device that sends less and
// waits for the reply is answered. A byte that does not belong is left
// unread for the caller.
func (fr *frameReader) readTrailer(ctx context.Context, sc *scan) error {
	var csBuf [2]byte
	for len(sc.cs) < 2 {
		c, err := fr.l.readByte(ctx, fr.trailer)
		if errors.Is(err, errReadTimeout) {
			return nil
		}
		if err != nil {
			return err
		}
		if !isHex(c) {
			fr.l.unread()
			break
		}
		sc.cs = append(csBuf[:len(sc.cs)], c)
	}
	c, err := fr.l.readByte(ctx, fr.trailer)
	switch {
	case errors.Is(err, errReadTimeout):
	case err != nil:
		return err
	case c == CR:
		sc.cr = true
		c, err = fr.l.readByte(ctx, fr.trailer)
		switch {
		case errors.Is(err, errReadTimeout):
		case err != nil:
			return err
		case c == LF:
			sc.lf = true
		default:
			fr.l.unread()
		}
	case c == LF:
		sc.lf = true
	case c == STX || c == EOT || c == ENQ:
		fr.l.unread()
	default:
		fr.l.unread()
		sc.garbage = true
	}
	return nil
}

// validate decides whether f is acceptable, and which deviations it shows.
func (fr *frameReader) validate(f frame, sc *scan) frame {
	malformed := func() {
		if f.bad == nil {
			f.bad = errMalformed
		}
	}
	if sc.oversize {
		f.bad = errOversized
	}
	if sc.badFN || sc.garbage {
		malformed()
	}
	if len(f.text) > MaxFrameText {
		f.dev |= DevOversizedFrame
	}
	if f.fn < 0 {
		f.dev |= DevNoFrameNumber
	}
	if sc.noEnd {
		f.dev |= DevMissingETX
		f.end = ETX
	} else {
		switch len(sc.cs) {
		case 0:
			f.dev |= DevNoChecksum
		case 1:
			malformed()
		case 2:
			if hexVal(sc.cs[0])<<4|hexVal(sc.cs[1]) != sc.sum {
				if f.bad == nil {
					f.bad = errChecksum
				}
			} else if isLowerHex(sc.cs[0]) || isLowerHex(sc.cs[1]) {
				f.dev |= DevLowercaseChecksum
			}
		}
		if !sc.cr || !sc.lf {
			f.dev |= DevFrameTerminator
		}
	}
	if sc.textLF {
		f.dev |= DevLFInText
	}
	if sc.ctrl {
		f.dev |= DevControlInText
	}
	if f.end == ETX && len(f.text) > 0 {
		if last := f.text[len(f.text)-1]; last != CR && last != LF {
			f.dev |= DevUnterminatedRecord
		}
	}
	if !fr.lenient && (f.dev != 0 || f.end == ETX && len(f.text) == 0) {
		malformed() // strict: any deviation, or a last frame with no record in it
	}
	return f
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f'
}

func isLowerHex(c byte) bool { return c >= 'a' && c <= 'f' }

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
