package otp

import (
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// QR is a QR code drawn as one SVG path: the page inlines it, so no image
// is fetched (the pages' Content-Security-Policy allows none) and the
// secret never leaves the server in a URL.
type QR struct {
	// Size is the side of the square in modules, quiet zone included:
	// the SVG's viewBox is "0 0 Size Size".
	Size int
	// Path is the path data: one unit square per dark module.
	Path string
}

// NewQR encodes content (an otpauth URI) at error-correction level M,
// which phone cameras read well at the size the page shows.
func NewQR(content string) (QR, error) {
	code, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		return QR{}, fmt.Errorf("encode qr code: %w", err)
	}
	bits := code.Bitmap()
	var b strings.Builder
	for y, row := range bits {
		for x := 0; x < len(row); x++ {
			if !row[x] {
				continue
			}
			// A run of dark modules is one rectangle.
			end := x
			for end < len(row) && row[end] {
				end++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x, y, end-x, end-x)
			x = end
		}
	}
	return QR{Size: len(bits), Path: b.String()}, nil
}
