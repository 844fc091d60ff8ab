package tenants

import (
	"errors"
	"fmt"
	"image/color"
	"net/url"
	"strings"
)

// maxLogoURLLen bounds Branding.LogoURL, in bytes.
const maxLogoURLLen = 2048

// LogoOrigin checks a Branding.LogoURL and returns its origin written as a
// Content-Security-Policy source expression: "https://" followed by the
// canonical host and, when not 443, ":" and the port.
//
// A logo URL must be an absolute https:// URL of at most 2048 bytes, made
// only of the characters RFC 3986 allows in a URL (no space, double quote,
// angle bracket, backslash, control or non-ASCII character), naming its host by a domain
// name (no IP literal, which CSP host sources cannot express for IPv6 and
// which no operator needs for a logo), without a user name, password or
// fragment. The error says what is wrong and never repeats the URL.
//
// Nothing else is promised about the image: the browser fetches it, not
// tenantgate, so the URL cannot reach anything the person's browser could
// not reach anyway, and the page's policy allows images from this origin
// only.
func LogoOrigin(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("empty")
	}
	if len(raw) > maxLogoURLLen {
		return "", fmt.Errorf("longer than %d bytes", maxLogoURLLen)
	}
	for i := 0; i < len(raw); i++ {
		if !urlByte(raw[i]) {
			return "", errors.New("contains a character not allowed in a URL (space, double quote, angle bracket, backslash, control or non-ASCII)")
		}
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return "", errors.New("must be an absolute https:// URL")
	}
	if u.Scheme != "https" {
		return "", errors.New("must use https")
	}
	if u.User != nil {
		return "", errors.New("must not contain a user name or password")
	}
	if strings.Contains(raw, "#") {
		return "", errors.New("must not contain a fragment")
	}
	host, err := CanonicalDomain(u.Hostname())
	if err != nil {
		return "", errors.New("host must be a domain name")
	}
	origin := "https://" + host
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if checkPort(p) != nil {
			return "", errors.New("port must be a number from 1 to 65535")
		}
		if p = strings.TrimLeft(p, "0"); p != "443" {
			origin += ":" + p
		}
	}
	return origin, nil
}

// urlByte reports whether c may appear in a URL (RFC 3986 §2: unreserved,
// reserved and "%").
func urlByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~:/?#[]@!$&'()*+,;=%", c) >= 0
}

// ParseAccentColor reads a Branding.AccentColor: "#" and exactly three or
// six hexadecimal digits (either case), as in CSS. "#abc" is "#aabbcc". The
// result is opaque. Anything else, including CSS colour names and "#rgba"
// forms, is an error.
func ParseAccentColor(s string) (color.RGBA, error) {
	bad := errors.New("must be #rgb or #rrggbb (hexadecimal digits)")
	hex, ok := strings.CutPrefix(s, "#")
	if !ok || (len(hex) != 3 && len(hex) != 6) {
		return color.RGBA{}, bad
	}
	var d [6]uint8
	for i := 0; i < len(hex); i++ {
		v, ok := hexDigit(hex[i])
		if !ok {
			return color.RGBA{}, bad
		}
		d[i] = v
	}
	if len(hex) == 3 {
		return color.RGBA{R: d[0] * 17, G: d[1] * 17, B: d[2] * 17, A: 0xff}, nil
	}
	return color.RGBA{R: d[0]<<4 | d[1], G: d[2]<<4 | d[3], B: d[4]<<4 | d[5], A: 0xff}, nil
}

func hexDigit(c byte) (uint8, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
