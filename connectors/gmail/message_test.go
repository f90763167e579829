package gmail

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"
)

// FuzzBuildMessage checks the builder's promises on any input: it never panics; input
// with a line break in the subject, to or cc is refused; and an accepted message has
// exactly the header fields the builder writes, each once, on lines with no stray CR or
// LF and within RFC 5322's 998 characters, and reads back to what was put in.
func FuzzBuildMessage(f *testing.F) {
	f.Add("Weekly report", "ada@example.com", "", "All jobs ran.\n", "")
	f.Add("Hi\r\nBcc: evil@example.net", "ada@example.com", "bob@example.com", "x", "<p>x</p>")
	f.Add("Hi", "ada@example.com\r\nBcc: evil@example.net", "", "x", "")
	f.Add("Hi", "ada@example.com", "bob@example.com\nTo: evil@example.net", "x", "")
	f.Add("Grüße ✓ für März", "Zoë Müller <zoe@example.de>", `"Lovelace, Ada" <ada@example.com>`, "", "<b>hi</b>")
	f.Add("x", "=?utf-8?b?QWRhDQpCY2M6IGV2aWxAZXhhbXBsZS5uZXQ=?= <ada@example.com>", "", "t", "")
	f.Add(strings.Repeat("ü ", 300), "a@b.c", "c@d.e", "line\r\n.\r\nend\rlone", "h")
	f.Add("  padded\tsubject  ", "a@b.c", "", "=3D soft=\nbreak", "")
	f.Fuzz(func(t *testing.T, subject, to, cc, text, html string) {
		e := email{To: []string{to}, Subject: subject, Text: text, HTML: html}
		if cc != "" {
			e.Cc = []string{cc}
		}
		raw, err := buildMessage(e, time.Unix(1_700_000_000, 0), "FUZZ@levqor")
		if err != nil {
			return
		}
		if strings.ContainsAny(subject+to+cc, "\r\n") {
			t.Fatalf("accepted a line break: subject %q, to %q, cc %q", subject, to, cc)
		}

		head, _, ok := strings.Cut(string(raw), "\r\n\r\n")
		if !ok {
			t.Fatal("no end to the header section")
		}
		want := map[string]bool{"To": true, "Subject": true, "Date": true, "Message-ID": true, "MIME-Version": true, "Content-Type": true}
		if cc != "" {
			want["Cc"] = true
		}
		if text == "" || html == "" {
			want["Content-Transfer-Encoding"] = true
		}
		seen := map[string]bool{}
		for _, line := range strings.Split(head, "\r\n") {
			if strings.ContainsAny(line, "\r\n") || len(line) > 998 || line == "" {
				t.Fatalf("bad header line %q", line)
			}
			if line[0] == ' ' {
				if strings.TrimSpace(line) == "" {
					t.Fatalf("whitespace-only continuation line in %q", head)
				}
				continue
			}
			name, _, ok := strings.Cut(line, ":")
			if !ok || !want[name] || seen[name] {
				t.Fatalf("unexpected header line %q", line)
			}
			seen[name] = true
		}
		if len(seen) != len(want) {
			t.Fatalf("header fields %v; want %v", seen, want)
		}

		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("read message: %v", err)
		}
		if !strings.Contains(subject, "=?") {
			var dec mime.WordDecoder
			got, err := dec.DecodeHeader(msg.Header.Get("Subject"))
			if err != nil || strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields(subject), " ") {
				t.Fatalf("Subject %q decodes to %q (%v); want %q", msg.Header.Get("Subject"), got, err, subject)
			}
		}
		wantTo, _ := mail.ParseAddress(to)
		if got, err := msg.Header.AddressList("To"); err != nil || len(got) != 1 || got[0].Address != wantTo.Address {
			t.Fatalf("To %q reads as %v (%v)", msg.Header.Get("To"), got, err)
		}
		if cc != "" {
			wantCc, _ := mail.ParseAddress(cc)
			if got, err := msg.Header.AddressList("Cc"); err != nil || len(got) != 1 || got[0].Address != wantCc.Address {
				t.Fatalf("Cc %q reads as %v (%v)", msg.Header.Get("Cc"), got, err)
			}
		}

		var bodies []string
		mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("Content-Type: %v", err)
		}
		if mt == "multipart/alternative" {
			mr := multipart.NewReader(msg.Body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("part: %v", err)
				}
				b, err := io.ReadAll(quotedprintable.NewReader(p))
				if err != nil {
					t.Fatalf("decode part: %v", err)
				}
				bodies = append(bodies, string(b))
			}
		} else {
			b, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
			if err != nil {
				t.Fatalf("decode body: %v", err)
			}
			bodies = []string{string(b)}
		}
		var wantBodies []string
		for _, s := range []string{text, html} {
			if s != "" {
				wantBodies = append(wantBodies, lines(s))
			}
		}
		if len(bodies) != len(wantBodies) {
			t.Fatalf("%d bodies; want %d", len(bodies), len(wantBodies))
		}
		for i := range bodies {
			if lines(bodies[i]) != wantBodies[i] {
				t.Fatalf("body %d reads back as %q; want %q", i, bodies[i], wantBodies[i])
			}
		}
	})
}

// lines normalises line breaks, which quoted-printable text turns into CRLF.
func lines(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

func TestWriteFieldFoldsAtSpaces(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"Subject", "short", "Subject: short\r\n"},
		{"Subject", "", "Subject: \r\n"},
		{"Subject", "=?utf-8?q?" + strings.Repeat("a", 63) + "?= =?utf-8?q?b?=",
			"Subject:\r\n =?utf-8?q?" + strings.Repeat("a", 63) + "?=\r\n =?utf-8?q?b?=\r\n"},
		{"To", strings.Repeat("x", 40) + "@example.com, " + strings.Repeat("y", 40) + "@example.com",
			"To: " + strings.Repeat("x", 40) + "@example.com,\r\n " + strings.Repeat("y", 40) + "@example.com\r\n"},
		// Runs of spaces never leave a line of whitespace alone.
		{"Subject", strings.Repeat("w", 75) + "  " + strings.Repeat("v", 80),
			"Subject:\r\n " + strings.Repeat("w", 75) + "\r\n  " + strings.Repeat("v", 80) + "\r\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		writeField(&b, tt.name, tt.value)
		if b.String() != tt.want {
			t.Errorf("writeField(%q, %q) =\n%q\nwant\n%q", tt.name, tt.value, b.String(), tt.want)
		}
	}
}

func TestTokenCacheForgetsLeastRecentlyUsed(t *testing.T) {
	a := credentials{"id", "secret", "refresh-a"}.key()
	b := credentials{"id", "secret", "refresh-b"}.key()
	d := credentials{"id", "secret", "refresh-d"}.key()
	if (credentials{"ab", "c", "d"}).key() == (credentials{"a", "bc", "d"}).key() {
		t.Fatal("fields shifted between one another give the same key")
	}
	c := newTokenCache(2)
	ea := c.entry(a)
	c.entry(b)
	if c.entry(a) != ea {
		t.Fatal("a second look-up made a new entry")
	}
	c.entry(d) // evicts b, the least recently used
	if _, ok := c.entries[b]; ok || len(c.entries) != 2 || c.lru.Len() != 2 {
		t.Fatalf("after eviction: %d entries, %d in the list, b kept: %v", len(c.entries), c.lru.Len(), ok)
	}
	if c.entry(a) != ea {
		t.Fatal("the most recently used entry was evicted")
	}
}
